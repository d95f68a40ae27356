import Glibc
import Synchronization

/// Ctrl-C (SIGINT) and SIGTERM during training: the first one asks training to stop after the
/// batch it is on, so that the model trained so far can be saved; it also restores the default
/// action, so that a second one ends the process at once.
enum Interruption {
    /// The signal received, or 0. Atomic stores are safe in a signal handler.
    private static let received = Atomic<Int32>(0)

    static var signal: Int32 { received.load(ordering: .relaxed) }

    static func install() {
        // Initialise the static before a handler can touch it.
        received.store(0, ordering: .relaxed)
        for sig in [SIGINT, SIGTERM] {
            _ = Glibc.signal(sig) { sig in
                Interruption.received.store(sig, ordering: .relaxed)
                _ = Glibc.signal(sig, SIG_DFL)
            }
        }
    }

    static func uninstall() {
        for sig in [SIGINT, SIGTERM] { _ = Glibc.signal(sig, SIG_DFL) }
    }
}
