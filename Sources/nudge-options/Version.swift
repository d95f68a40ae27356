// The project's version: the one place it is written. `make generate` copies it into the core
// (NudgeVersion), the C header (NUDGE_VERSION_*, NUDGE_ABI_VERSION, nudge_version_string()), the
// Python package (nudge.__version__ and the ABI version it expects) and so the CLI (`nudge --version`).

/// major.minor.patch: minor grows with new functions or fields, major with a break in source compatibility.
let version = (major: 0, minor: 6, patch: 0)

/// The C ABI's version: grows only when a compiled program could break (a changed struct layout,
/// a changed meaning). Appending fields or functions keeps it. It is the installed library's soname,
/// libnudge.so.N (docs/INSTALL.md), and `make abi-check` fails on a break made without growing it.
let abiVersion = 1

var versionString: String { "\(version.major).\(version.minor).\(version.patch)" }

enum VersionFiles {
    static let core = "Sources/Nudge/Version.swift"
    static let abi = "Sources/NudgeABI/Version.swift"
    static let python = "bindings/python/nudge/_version.py"

    static func renderCore() -> String {
        generatedBanner("//", from: "Version.swift") + """

            /// The library's version. The C ABI and the Python package report the same numbers.
            public enum NudgeVersion {
                /// Changes when Swift or C callers must change their code.
                public static let major = \(version.major)
                /// Changes when features are added.
                public static let minor = \(version.minor)
                /// Changes for fixes only.
                public static let patch = \(version.patch)
                /// `major.minor.patch`.
                public static let string = "\(versionString)"
            }

            """
    }

    static func renderABI() -> String {
        generatedBanner("//", from: "Version.swift") + """

            // MARK: - Versions

            // @c-section library

            /// Major version: changes when a release breaks source compatibility.
            public let NUDGE_VERSION_MAJOR: Int32 = \(version.major)
            /// Minor version: new functions or fields.
            public let NUDGE_VERSION_MINOR: Int32 = \(version.minor)
            /// Patch version: fixes only.
            public let NUDGE_VERSION_PATCH: Int32 = \(version.patch)
            /// The ABI this header describes; nudge_abi_version() returns the library's. A binding compares
            /// the two and refuses a library built for another ABI.
            public let NUDGE_ABI_VERSION: Int32 = \(abiVersion)

            /// What nudge_version_string() returns: static, so C callers may keep the pointer.
            let versionString: StaticString = "\(versionString)"

            """
    }

    static func renderPython() -> String {
        generatedBanner("#", from: "Version.swift") + """
            \"\"\"The package's version, and the C ABI version it was written for (NUDGE_ABI_VERSION).\"\"\"

            __version__ = "\(versionString)"
            ABI_VERSION = \(abiVersion)

            """
    }
}
