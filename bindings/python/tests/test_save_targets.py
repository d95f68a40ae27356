"""Saves onto what is not a regular file (refused, the node left as it was), through symbolic links
(the file they point to is replaced), and the removal of stale temporary files of killed saves.

Every node is made here, in a temporary folder: never a real device such as /dev/null."""

import fcntl
import os
import socket
import stat
import subprocess
import sys

import numpy as np
import pytest

import nudge


@pytest.fixture
def net(blobs):
    X, y = blobs
    network = nudge.Network([4, 6, 3], hidden="tanh", output="softmax", seed=3)
    network.fit(X, y, epochs=1, verbose=False)
    return network


def _node(path):
    st = os.lstat(path)
    return (st.st_mode, st.st_ino, st.st_rdev, st.st_size)


def _fifo(folder):
    path = folder / "fifo"
    os.mkfifo(path, 0o640)
    return path


def _socket(folder):
    path = folder / "sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()  # the node stays
    return path


def _character_device(folder):
    path = folder / "chr"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("precondition: mknod needs root (CAP_MKNOD) to make a character device for this test")
    return path


def _folder(folder):
    path = folder / "folder"
    path.mkdir()
    return path


@pytest.mark.parametrize("make,kind", [
    (_fifo, "a FIFO"), (_socket, "a socket"), (_character_device, "a character device"), (_folder, "a directory"),
])
def test_save_onto_a_node_that_is_not_a_regular_file_is_refused(net, tmp_path, make, kind):
    path = make(tmp_path)
    before = _node(path)
    for save in (net.save, net.save_checkpoint):
        with pytest.raises(nudge.NudgeIOError) as error:
            save(path)
        assert f"{path} is not a regular file (it is {kind})" in str(error.value)
        assert _node(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left


def test_save_through_a_link_to_a_fifo_is_refused(net, tmp_path):
    fifo = _fifo(tmp_path)
    link = tmp_path / "link"
    link.symlink_to("fifo")
    before = _node(fifo)
    with pytest.raises(nudge.NudgeIOError, match="is not a regular file \\(it is a FIFO\\)"):
        net.save(link)
    assert _node(fifo) == before and link.is_symlink()


def test_save_through_links_replaces_the_file_they_point_to(net, tmp_path):
    (tmp_path / "sub").mkdir()
    real = tmp_path / "sub" / "real.nudge"
    real.write_bytes(b"old")
    real.chmod(0o600)
    (tmp_path / "link1").symlink_to("sub/real.nudge")
    (tmp_path / "link2").symlink_to(tmp_path / "link1")
    net.save(tmp_path / "link2")
    assert (tmp_path / "link1").is_symlink() and (tmp_path / "link2").is_symlink()
    assert real.read_bytes() == net.to_bytes()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["real.nudge"]
    assert np.array_equal(nudge.Network.load(tmp_path / "link2").parameters, net.parameters)


def test_save_through_a_dangling_link_creates_the_file_it_names(net, tmp_path):
    (tmp_path / "dangling").symlink_to("made.nudge")
    net.save(tmp_path / "dangling")
    assert (tmp_path / "dangling").is_symlink()
    assert (tmp_path / "made.nudge").read_bytes() == net.to_bytes()


def test_save_removes_stale_temporaries_but_not_a_locked_one(net, tmp_path):
    path = tmp_path / "model.nudge"
    stale = tmp_path / "model.nudge.tmp-q1W2e3"
    locked = tmp_path / "model.nudge.tmp-InUse9"
    others = [tmp_path / name for name in ["model.nudge.tmp-abc", "model.nudge.tmp-abcdefg", "model.nudgeX.tmp-abc123",
                                           "notes.txt", "model.nudge.tmp-a_b_c_"]]
    for p in [stale, locked, *others]:
        p.write_bytes(b"partial")
    # A save in progress in another process holds its temporary file locked.
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, sys; f = open(sys.argv[1], 'rb'); fcntl.flock(f, fcntl.LOCK_EX); "
                               "print('locked', flush=True); sys.stdin.read()", str(locked)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        net.save(path)
        assert not stale.exists()
        assert locked.exists()
        assert all(p.exists() for p in others)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    net.save(path)  # its process is gone, and its lock with it
    assert not locked.exists()
    assert all(p.exists() for p in others)
    assert path.read_bytes() == net.to_bytes()


def test_a_locked_stale_candidate_is_kept_while_this_process_holds_it(net, tmp_path):
    # flock locks of two open files conflict within one process too: the lock decides, not the owner.
    path = tmp_path / "model.nudge"
    held = tmp_path / "model.nudge.tmp-Held00"
    held.write_bytes(b"partial")
    with open(held, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        net.save(path)
        assert held.exists()
    net.save(path)
    assert not held.exists()
