import RegistryModel
import RegistryStore
import Testing

@Suite struct StoreSettingsTests {
    @Test func trashSectionTurnsTrashOnAndFlagsWin() throws {
        let settings = try StoreSettings.parse("trash:\n  keepFor: 48h\n", file: "s.yaml")
        #expect(settings.trash?.keepFor == TimeSpan(seconds: 48 * 3600))
        #expect(settings.trashChoice(flag: nil, keepFor: nil) == (true, TimeSpan(seconds: 48 * 3600)))
        #expect(settings.trashChoice(flag: false, keepFor: TimeSpan(seconds: 60)) == (false, TimeSpan(seconds: 60)))
        #expect(StoreSettings().trashChoice(flag: nil, keepFor: nil) == (false, StoreSettings.defaultTrashKeepFor))
        #expect(try StoreSettings.parse("trash: {}\n", file: "s.yaml").trash?.keepFor == StoreSettings.defaultTrashKeepFor)
        #expect(try StoreSettings.parse("# nothing set\n", file: "s.yaml") == StoreSettings())
    }

    @Test func missingFileMeansDefaults() throws {
        #expect(try StoreSettings.load(file: "/nonexistent/regkeeper.yaml") == StoreSettings())
    }

    @Test(arguments: [
        ("trash:\n  keepFor: soon\n", "s.yaml:2: trash.keepFor must be a duration"),
        ("trash:\n  keepFor: 0\n", "s.yaml:2: trash.keepFor must be a duration"),
        ("trash:\n  keep: 1h\n", "s.yaml:2: unknown key trash.keep"),
        ("gc:\n  trash: true\n", "s.yaml:2: unknown key 'gc'"),
        ("trash: yes\n", "s.yaml:1: trash must be a mapping"),
        ("- trash\n", "s.yaml:1: the file must be a mapping"),
        ("trash:\n  keepFor: 1h\ntrash:\n  keepFor: 2h\n", "s.yaml:3: 'trash' is given twice"),
        ("trash: [\n", "s.yaml:2: not valid YAML"),
    ])
    func badSettingsNameTheLine(text: String, message: String) {
        #expect {
            _ = try StoreSettings.parse(text, file: "s.yaml")
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }
}
