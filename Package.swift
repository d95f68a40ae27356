// swift-tools-version:6.0
import PackageDescription

// Where the linker finds the export list: only the `nudge_*` C functions leave libnudge.so.
let packageRoot = Context.packageDirectory

let package = Package(
    name: "Nudge",
    products: [
        // MARK: Swift
        .library(name: "Nudge", targets: ["Nudge"]),
        // MARK: C ABI: libnudge.so, described by include/nudge.h
        .library(name: "nudge", type: .dynamic, targets: ["NudgeABI"]),
        // MARK: Tools
        .executable(name: "nudge-header", targets: ["nudge-header"]),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        // MARK: Core and C boundary
        .target(name: "Nudge", dependencies: ["CBLAS", "CZlib"]),
        .target(
            name: "NudgeABI",
            dependencies: ["Nudge"],
            exclude: ["exports.map"],
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib",
                    "-Xlinker", "--version-script=\(packageRoot)/Sources/NudgeABI/exports.map",
                ]),
            ]
        ),

        // MARK: Tools
        .executableTarget(name: "nudge-header"),

        // MARK: Tests
        .testTarget(name: "NudgeTests", dependencies: ["Nudge"]),
    ]
)
