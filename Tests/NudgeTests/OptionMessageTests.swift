import Testing
@testable import Nudge

/// Each layer names an option the way its caller wrote it; in Swift that is the property of
/// TrainingOptions. The cases come from the option table (OptionCases.swift, generated), so an option
/// added to the table is covered without a change here.
@Suite("option messages")
struct OptionMessageTests {
    @Test("every option out of range is named by its Swift property, as the subject of the error",
          arguments: outOfRangeOptions.map(\.field))
    func namedAsProperty(field: TrainingOptions.Field) throws {
        let breaking = try #require(outOfRangeOptions.first { $0.field == field }).breaking
        var options = TrainingOptions()
        breaking(&options)
        #expect(throws: NudgeError.self) { try options.validate() }
        do {
            try options.validate()
        } catch {
            #expect(error.kind == .invalidArgument)
            let subject = try #require(error.subjects.first)
            switch subject {
            case .option(let named), .entry(let named, _): #expect(named == field)
            }
            #expect(error.message.hasPrefix(subject.swiftName + " is "), "\(error.message)")
            #expect(error.message.contains("; "), "\(error.message)")
            #expect(!error.message.contains("options->"), "\(error.message)")
            // Another layer spells the same error its own way, from the same parts.
            let spelt = error.message(naming: { "<\($0.swiftName)>" })
            #expect(spelt.hasPrefix("<\(subject.swiftName)> is "), "\(spelt)")
        }
    }

    @Test("the cases cover every option with a range, and each case alone breaks nothing else")
    func casesAreIsolated() throws {
        #expect(outOfRangeOptions.count >= 15)
        try TrainingOptions().validate()
        for (field, breaking) in outOfRangeOptions {
            var options = TrainingOptions()
            breaking(&options)
            #expect(options != TrainingOptions(), "\(field)")
        }
    }
}
