/// The library's version. The C ABI reports the same numbers.
public enum NudgeVersion {
    /// Changes when Swift or C callers must change their code.
    public static let major = 0
    /// Changes when features are added.
    public static let minor = 2
    /// Changes for fixes only.
    public static let patch = 0
    /// `major.minor.patch`.
    public static let string = "\(major).\(minor).\(patch)"
}
