// nudge-header: writes include/nudge.h from the Swift C-ABI sources (Sources/NudgeABI).
//
//   nudge-header <abi-sources-dir> <prologue-file> <output-header|->
//   nudge-header --list-functions <abi-sources-dir>   one exported function name per line
//   nudge-header --layout <abi-sources-dir>           struct sizes and field offsets
//   nudge-header --c-stubs <abi-sources-dir>          every function defined with an empty body,
//                                                     as C, for the ABI check (Tests/abi)
//
// The header is ordered by sections, one per object of the library (Sections.swift holds their
// order, titles and introductions). Every C declaration of the sources belongs to the section
// named by the nearest line
//
//   // @c-section NAME
//
// above it in its file: a plain comment on a line of its own, at the top level; a file may switch
// sections, and a C declaration with no such line above it is an error. A section lists its
// types, then its functions, each in source order (files in byte-wise name order), except that a
// type moves up to just before the first type that uses it. A section may use what earlier
// sections declare; a type used by an earlier section than its own is an error that names it.
// `// MARK:` comments mean nothing here. docs/ABI.md has the rules for the whole header.
//
// Exit status: 0 on success, 1 for a problem in the sources, 2 for bad usage or I/O.

import Foundation

let usage = """
    usage: nudge-header <abi-sources-dir> <prologue-file> <output-header|->
           nudge-header --list-functions <abi-sources-dir>
           nudge-header --layout <abi-sources-dir>
           nudge-header --c-stubs <abi-sources-dir>
    """

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

func fail(_ message: String, status: Int32) -> Never {
    printError(message)
    exit(status)
}

func readText(_ path: String) -> String {
    guard let file = FileHandle(forReadingAtPath: path) else { fail("nudge-header: cannot read \(path)", status: 2) }
    defer { file.closeFile() }
    return String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
}

/// The `*.swift` files of `directory`, in byte-wise filename order (not locale order, so the
/// output is the same everywhere). Hidden files, such as editors' lock files, are skipped.
func loadSources(_ directory: String) throws -> Header {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
        fail("nudge-header: cannot list \(directory)", status: 2)
    }
    let swiftFiles = names.filter { $0.hasSuffix(".swift") && !$0.hasPrefix(".") }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    let files = try swiftFiles.map { name in
        let path = (directory as NSString).appendingPathComponent(name)
        return try Parser.parse(try Lexer.lex(readText(path), file: path), file: path)
    }
    return try Resolver.resolve(files)
}

/// Lines such as `nudge_train_options size 40 align 8` and `nudge_train_options.epochs offset 0`,
/// for tests that compare against Swift's MemoryLayout.
func layoutReport(_ header: Header) -> String {
    header.structures.map { structure in
        let head = "\(structure.name) size \(structure.layout.size) align \(structure.layout.alignment)\n"
        return head + structure.fields.map { "\(structure.name).\($0.name) offset \($0.offset)\n" }.joined()
    }.joined()
}

/// Writes only when the content changes, so `make` sees an unchanged header as up to date.
func writeOutput(_ text: String, to path: String) {
    if path == "-" {
        FileHandle.standardOutput.write(Data(text.utf8))
        return
    }
    if FileManager.default.contents(atPath: path) == Data(text.utf8) { return }
    do {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        fail("nudge-header: cannot write \(path): \(error.localizedDescription)", status: 2)
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch (arguments.first, arguments.count) {
    case ("--list-functions"?, 2):
        writeOutput(try loadSources(arguments[1]).functionNames.map { $0 + "\n" }.joined(), to: "-")
    case ("--layout"?, 2):
        writeOutput(layoutReport(try loadSources(arguments[1])), to: "-")
    case ("--c-stubs"?, 2):
        writeOutput(CStubs.render(try loadSources(arguments[1])), to: "-")
    case (let first?, 3) where !first.hasPrefix("--"):
        let header = try loadSources(arguments[0])
        writeOutput(HeaderWriter.render(header, prologue: readText(arguments[1])), to: arguments[2])
    default:
        fail(usage, status: 2)
    }
} catch let diagnostic as Diagnostic {
    fail(diagnostic.description, status: 1)
}
