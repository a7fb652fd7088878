import ArgumentParser
import RegistryModel

// Durations and sizes are options of type `TimeSpan` and `ByteCount` parsed with
// `transform: TimeSpan.init(parsing:)` rather than through `ExpressibleByArgument`, whose
// failable `init?(argument:)` only lets ArgumentParser say "invalid": the thrown `ParseError`
// says why (`-1h`: durations are not negative). They are declared with
// `parsing: .unconditional`, or ArgumentParser would take `-1h` for a flag and report a
// missing value.

extension ArgumentHelp {
    /// Help for a duration option. ArgumentParser shows no default for an option parsed with
    /// `transform:`, so it is added here.
    static func span(_ abstract: String, default value: TimeSpan? = nil) -> ArgumentHelp {
        ArgumentHelp(abstract + (value.map { " (default: \($0))" } ?? ""), valueName: "span")
    }

    /// Help for a size option (see `span`).
    static func size(_ abstract: String) -> ArgumentHelp {
        ArgumentHelp(abstract, valueName: "size")
    }
}
