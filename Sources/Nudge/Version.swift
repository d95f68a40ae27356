/// The library's version. The C ABI reports the same numbers.
public enum NudgeVersion {
    public static let major = 0
    public static let minor = 2
    public static let patch = 0
    /// `major.minor.patch`.
    public static let string = "\(major).\(minor).\(patch)"
}
