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
        .executable(name: "nudge-options", targets: ["nudge-options"]),
        // `nudge` is taken by the library product above; `make cli` copies this one to .build/release/nudge.
        .executable(name: "nudge-cli", targets: ["nudge-cli"]),
        // MARK: Examples
        .executable(name: "nudge-swift-example", targets: ["nudge-swift-example"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: System libraries
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        // MARK: Core and C boundary
        // Element-wise kernels in C, compiled for AVX-512, AVX2 and the baseline (NudgeKernels.h).
        // No contraction into fused multiply-adds: every version rounds as the Swift code does. DWARF 4:
        // Debian's valgrind 3.19 cannot read the toolchain's default DWARF 5 and gives up on the library.
        .target(name: "NudgeKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off", "-fno-math-errno", "-gdwarf-4"])]),
        .target(name: "Nudge", dependencies: ["CBLAS", "CZlib", "NudgeKernels"]),
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
        // Writes TrainingOptions, nudge_train_options, the CLI's flags and Python's options from one table.
        .executableTarget(name: "nudge-options"),
        .executableTarget(
            name: "nudge-cli",
            dependencies: ["Nudge", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            // The Swift runtime linked in, so that the tool runs without the toolchain's libraries.
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-l_FoundationCollections", "-l_FoundationCShims"])]
        ),

        // MARK: Examples
        // The public Swift API end to end (`make example-swift`); its source sits with the C examples.
        .executableTarget(name: "nudge-swift-example", dependencies: ["Nudge"], path: "examples/swift"),

        // MARK: Tests
        .testTarget(name: "NudgeTests", dependencies: ["Nudge", "NudgeKernels"]),
        // The public API as a Swift user sees it: `import Nudge` without @testable.
        .testTarget(name: "NudgeAPITests", dependencies: ["Nudge"]),
    ]
)
