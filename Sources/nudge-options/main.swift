// nudge-options: writes the code and docs generated from the training option table (Table.swift)
// and from the version (Version.swift).
//
//   nudge-options [ROOT]           writes every generated file under ROOT (default: .)
//   nudge-options --check [ROOT]   writes nothing; exit status 1, naming the files, if any differs
//
// Exit status: 0 on success, 1 for stale files (--check), 2 for bad usage or I/O.

import Foundation

let outputs: [(path: String, text: String)] = [
    (SwiftCore.path, SwiftCore.render(trainingOptions)),
    (SwiftABI.path, SwiftABI.render(trainingOptions)),
    (CLI.path, CLI.render(trainingOptions)),
    (Python.path, Python.render(trainingOptions)),
    (Docs.path, Docs.render(trainingOptions)),
    (VersionFiles.core, VersionFiles.renderCore()),
    (VersionFiles.abi, VersionFiles.renderABI()),
    (VersionFiles.python, VersionFiles.renderPython()),
    (TestCases.cPath, TestCases.renderC(trainingOptions)),
    (TestCases.swiftPath, TestCases.renderSwift(trainingOptions)),
]

var arguments = Array(CommandLine.arguments.dropFirst())
let check = arguments.first == "--check"
if check { arguments.removeFirst() }
guard arguments.count <= 1, !(arguments.first ?? "").hasPrefix("-") else {
    FileHandle.standardError.write(Data("usage: nudge-options [--check] [ROOT]\n".utf8))
    exit(2)
}
let root = URL(fileURLWithPath: arguments.first ?? ".")

var stale: [String] = []
for output in outputs {
    let url = root.appendingPathComponent(output.path)
    let data = Data(output.text.utf8)
    guard FileManager.default.contents(atPath: url.path) != data else { continue }
    stale.append(output.path)
    if check { continue }
    do {
        try data.write(to: url, options: .atomic)
    } catch {
        FileHandle.standardError.write(Data("nudge-options: cannot write \(url.path): \(error.localizedDescription)\n".utf8))
        exit(2)
    }
}
if check && !stale.isEmpty {
    FileHandle.standardError.write(Data(("nudge-options: generated files differ from the table; run `make generate`:\n"
        + stale.map { "  \($0)\n" }.joined()).utf8))
    exit(1)
}
if !check { print(stale.isEmpty ? "nudge-options: every generated file is up to date" : "nudge-options: wrote \(stale.joined(separator: ", "))") }
