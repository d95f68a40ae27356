"""Threads: concurrent prediction on one network, the GIL released during C calls, parallel training,
concurrent saves and loads, training while others predict on a clone."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

import nudge


def test_eight_threads_predicting_on_one_network(rng):
    net = nudge.Network([16, 64, 32, 5], seed=0)
    batches = [rng.normal(size=(int(rng.integers(1, 300)), 16)).astype(np.float32) for _ in range(64)]
    serial = [net.predict(b) for b in batches]
    serial_labels = [net.classify(b) for b in batches]
    barrier = threading.Barrier(8)

    def work(worker):
        barrier.wait()  # start together
        results = []
        for i in range(worker, worker + 64):
            b = batches[i % 64]
            results.append((i % 64, net.predict(b), net.classify(b)))
        return results

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(work, range(8)))
    for results in outcomes:
        assert len(results) == 64
        for i, out, labels in results:
            np.testing.assert_array_equal(out, serial[i])
            np.testing.assert_array_equal(labels, serial_labels[i])


def test_threads_evaluating_and_computing_gradients(rng):
    net = nudge.Network([8, 16, 3], seed=0)
    X = rng.normal(size=(200, 8)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    expected = (net.evaluate(X, y), net.gradient(X, y))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: (net.evaluate(X, y), net.gradient(X, y)), range(16)))
    for evaluation, gradient in results:
        assert evaluation == expected[0]
        np.testing.assert_array_equal(gradient, expected[1])


def _spin_while(flags, key):
    """Counts loop iterations while flags[key] is true: the pure-Python work used to detect a held GIL."""
    count = 0
    while flags[key]:
        count += 1
    return count


def _baseline_rate():
    """Iterations per second of _spin_while with the main thread alone (a sleeping timer ends it)."""
    flags = {"run": True}
    timer = threading.Timer(0.2, flags.__setitem__, ("run", False))
    start = time.perf_counter()
    timer.start()
    count = _spin_while(flags, "run")
    return count / (time.perf_counter() - start)


def test_the_gil_is_released_during_predict(rng):
    # One thread runs a long predict while the main thread spins in pure Python. If the GIL were held
    # for the C call, the main thread could not run a single bytecode until it returned.
    with threadpool_limits(limits=1):  # one BLAS thread, so that the two threads have a core each
        net = nudge.Network([512, 2048, 2048, 10], seed=0)
        n = 256
        for _ in range(8):  # calibrate: a batch that takes at least 0.3 s
            start = time.perf_counter()
            net.predict(np.zeros((n, 512), dtype=np.float32))
            if time.perf_counter() - start >= 0.3:
                break
            n *= 2
        X = rng.random((n, 512), dtype=np.float32)
        baseline = _baseline_rate()

        flags = {"in_call": False, "call_seconds": 0.0}
        started = threading.Event()

        def worker():
            flags["in_call"] = True
            started.set()
            start = time.perf_counter()
            net.predict(X)
            flags["call_seconds"] = time.perf_counter() - start
            flags["in_call"] = False

        thread = threading.Thread(target=worker)
        thread.start()
        started.wait()
        start = time.perf_counter()
        during = _spin_while(flags, "in_call")  # runs exactly while the other thread is in predict
        spent = time.perf_counter() - start
        thread.join()

    assert flags["call_seconds"] >= 0.25, "the predict call was too short to measure anything"
    # Iterations made while the other thread was inside predict, relative to what the main thread makes
    # alone in that time: about 1 when the GIL is released, about 0 when it is held.
    fraction = during / (baseline * flags["call_seconds"])
    assert fraction > 0.3, f"main thread ran at {fraction:.0%} of its normal rate during the C call"
    assert spent >= 0.9 * flags["call_seconds"]


def test_the_gil_is_released_during_training(rng):
    # One epoch of one batch: a long stretch of C with the two callbacks (which take the GIL) at its end,
    # so that holding the GIL in C would leave the main thread a few milliseconds at most.
    with threadpool_limits(limits=1):
        X = rng.normal(size=(4096, 256)).astype(np.float32)
        y = rng.integers(0, 4, 4096)
        net = nudge.Network([256, 2048, 4], seed=0)
        baseline = _baseline_rate()
        flags = {"training": True}

        def worker():
            try:
                net.fit(X, y, epochs=1, batch_size=4096, verbose=False)
            finally:
                flags["training"] = False

        thread = threading.Thread(target=worker)
        start = time.perf_counter()
        thread.start()
        count = _spin_while(flags, "training")
        elapsed = time.perf_counter() - start
        thread.join()
    assert net.history.stop_reason == "completed" and len(net.history) == 1
    assert elapsed >= 0.1, "training was too short to measure anything"
    fraction = count / (baseline * elapsed)
    assert fraction > 0.3, f"main thread ran at {fraction:.0%} of its normal rate while another thread trained"


def test_threads_training_their_own_networks(rng):
    data = []
    for i in range(4):
        X = rng.normal(size=(400, 6)).astype(np.float32)
        y = (X[:, i] > 0).astype(np.int64) + (X[:, (i + 1) % 6] > 1)
        data.append((X, y))

    def train(i):
        net = nudge.Network([6, 32, 3], seed=i)
        X, y = data[i]
        history = net.fit(X, y, epochs=15, learning_rate=0.01, validation_split=0.2, seed=i, verbose=False)
        return net.parameters, history.train_loss, history.stop_reason

    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(train, range(4)))
    serial = [train(i) for i in range(4)]
    for (p_params, p_loss, p_reason), (s_params, s_loss, s_reason) in zip(parallel, serial):
        assert p_reason == s_reason == "completed"
        np.testing.assert_array_equal(p_params, s_params)  # same seed, same run, whatever else runs
        assert p_loss == s_loss
        assert p_loss[-1] < p_loss[0]


def test_interrupts_only_in_the_main_thread(rng):
    # fit in a worker thread must not touch signal handlers (signal.signal would raise there).
    X = rng.normal(size=(100, 4)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    errors = []

    def work():
        try:
            nudge.Network([4, 8, 3], seed=0).fit(X, y, epochs=2, verbose=False)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors


def _train_in_child(seed):
    rng = np.random.default_rng(seed)
    X = rng.random((1000, 64), dtype=np.float32)
    y = rng.integers(0, 4, 1000)
    net = nudge.Network([64, 512, 4], seed=seed)
    history = net.fit(X, y, epochs=1, batch_size=100, verbose=False)
    return history.train_loss[-1], net.predict(X).shape


def test_forked_children_train_after_the_parent_used_the_thread_pool():
    # The parent's worker threads do not survive fork(); a child that still counted on them would
    # wait for them forever on its first parallel region.
    import multiprocessing

    assert nudge.get_num_threads() >= 1
    _train_in_child(0)  # starts the parent's workers (when there are two or more processors)
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.map_async(_train_in_child, [1, 2]).get(timeout=60)
    assert [shape for _, shape in results] == [(1000, 4), (1000, 4)]
    assert all(np.isfinite(loss) for loss, _ in results)


def test_threads_saving_and_loading_their_own_files(tmp_path):
    # Each thread saves its own network (a different size each, so the files differ) to its own path
    # again and again, and loads it back: the file's bytes and the loaded network are its own.
    nets = [nudge.Network([4 + i, 6 + 3 * i, 3], seed=i) for i in range(6)]
    expected = [net.to_bytes() for net in nets]
    assert len({len(b) for b in expected}) == 6
    barrier = threading.Barrier(6)

    def work(i):
        path = tmp_path / f"net-{i}.nudge"
        barrier.wait()
        for _ in range(60):
            nets[i].save(path)
            assert path.read_bytes() == expected[i]
            assert nudge.Network.load(path).to_bytes() == expected[i]
        return i

    with ThreadPoolExecutor(6) as pool:
        assert sorted(pool.map(work, range(6))) == list(range(6))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"net-{i}.nudge" for i in range(6)]


def test_threads_saving_onto_one_path_while_others_load_it(tmp_path):
    # Saves rename a finished temporary file over the path, so a load always finds one whole file.
    nets = [nudge.Network([5, 8 + 4 * i, 3], seed=i) for i in range(3)]
    expected = {net.to_bytes() for net in nets}
    path = tmp_path / "shared.nudge"
    nets[0].save(path)
    stop = threading.Event()

    def save(i):
        for _ in range(60):
            nets[i].save(path)

    def load():
        count = 0
        while not stop.is_set():
            assert nudge.Network.load(path).to_bytes() in expected
            count += 1
        return count

    with ThreadPoolExecutor(5) as pool:
        loaders = [pool.submit(load) for _ in range(2)]
        savers = [pool.submit(save, i) for i in range(3)]
        for future in savers:
            future.result()
        stop.set()
        seen = [future.result() for future in loaders]
    assert all(count > 0 for count in seen)
    assert [p.name for p in tmp_path.iterdir()] == ["shared.nudge"]  # no temporary file left


def _train_while_predicting(trained, watched, X, y):
    """Trains `trained` on one thread while three threads predict with `watched` (its clone, or the
    network it was cloned from); every prediction must equal the one made before training began."""
    before = watched.predict(X)
    done = threading.Event()

    def train():
        try:
            return trained.fit(X, y, epochs=40, batch_size=30, learning_rate=0.01, verbose=False)
        finally:
            done.set()

    def predict():
        rounds = 0
        while not done.is_set() or rounds == 0:
            np.testing.assert_array_equal(watched.predict(X), before)
            rounds += 1
        return rounds

    with ThreadPoolExecutor(4) as pool:
        readers = [pool.submit(predict) for _ in range(3)]
        history = pool.submit(train).result()
        rounds = [r.result() for r in readers]
    assert history.stop_reason == "completed" and history.train_loss[-1] < history.train_loss[0]
    assert all(r > 0 for r in rounds)
    assert not np.array_equal(trained.predict(X), before)  # the trained one did change
    np.testing.assert_array_equal(watched.predict(X), before)


def test_training_while_others_predict_on_a_clone(rng):
    # A clone is a snapshot: while one thread trains the original, threads predicting with the clone
    # get exactly the answers of the network as it was cloned.
    X = rng.normal(size=(300, 10)).astype(np.float32)
    net = nudge.Network([10, 32, 4], seed=3)
    _train_while_predicting(net, net.clone(), X, rng.integers(0, 4, 300))


def test_training_a_clone_while_others_predict_on_the_original(rng):
    X = rng.normal(size=(300, 10)).astype(np.float32)
    net = nudge.Network([10, 32, 4], seed=4)
    _train_while_predicting(net.clone(), net, X, rng.integers(0, 4, 300))
