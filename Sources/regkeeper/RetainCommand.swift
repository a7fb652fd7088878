import ArgumentParser
import Foundation
import GarbageCollection
import Operations
import RegistryModel
import RegistryStore
import Retention
import StateDatabase

struct RetainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retain",
        abstract: "Delete the tags a retention policy does not keep, and the manifests left untagged.",
        discussion: """
            Plans every repository a rule of the policy governs (see regkeeper-policy(5)): each \
            tag is kept or deleted with the rule and selector that decided it, and manifests no \
            kept tag, index, referrer or in-use reference needs are deleted as the rule's \
            `untagged` section says. Applying removes tag directories and revision links, as the \
            registry's API does; blobs are freed by gc (--gc runs it right after). Every deletion \
            is recorded in <state-dir>/state.db; see `regkeeper history`.

            Review first: --dry-run --plan-out FILE saves the plan, --apply-plan FILE applies \
            exactly that plan, and refuses a repository whose tags moved since. The circuit \
            breaker (safety.maxDeletePercent, default 50) stops the apply before anything is \
            touched when a repository would lose a larger share of its tags; --force overrides it. \
            A policy with pulledWithin refuses, unless --force, when the logs imported by \
            `regkeeper pulls import` do not reach back over its window.

            EXIT STATUS: 0 success; 1 could not run (invalid policy or plan, no \
            docker/registry/v2 under the root, unreadable store, unwritable state directory); \
            2 another run holds the lock; 3 refused: the circuit breaker tripped, the pull history \
            does not cover pulledWithin, the store \
            changed since the plan in some repositories, or gc found unreadable manifests; \
            4 some deletions failed.
            """
    )

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: ArgumentHelp("The retention policy (YAML).", valueName: "file"))
    var policy: String?

    @Flag(name: .long, help: "Print the plan without changing anything.")
    var dryRun = false

    @Option(name: .customLong("plan-out"), help: ArgumentHelp("Save the plan as JSON, for review and --apply-plan.", valueName: "file"))
    var planOut: String?

    @Option(name: .customLong("apply-plan"), help: ArgumentHelp("Apply a saved plan exactly, instead of planning anew.", valueName: "file"))
    var applyPlan: String?

    @Flag(name: .long, help: "Apply even when the circuit breaker trips.")
    var force = false

    @Flag(name: .long, help: "Run gc after applying, to free the blobs of deleted manifests.")
    var gc = false

    @Option(name: .long, parsing: .unconditional, help: .span("With --gc: keep unreferenced blobs younger than this.", default: GCOptions().gracePeriod), transform: TimeSpan.init(parsing:))
    var gracePeriod = GCOptions().gracePeriod

    @Option(name: .long, parsing: .unconditional, help: .span("With --gc: keep doomed items out of the registry's sight this long before re-reading links pushes wrote.", default: GCOptions().settle), transform: TimeSpan.init(parsing:))
    var settle = GCOptions().settle

    @Option(name: .long, help: ArgumentHelp("Write Prometheus metrics here after applying (node_exporter textfile collector).", valueName: "file"))
    var metricsFile: String?

    func validate() throws {
        guard (policy == nil) != (applyPlan == nil) else { throw ValidationError("give --policy FILE or --apply-plan FILE (exactly one)") }
        if applyPlan != nil, dryRun { throw ValidationError("--apply-plan applies a plan; print it with --dry-run --policy, or read the file") }
        if applyPlan != nil, planOut != nil { throw ValidationError("--plan-out saves a new plan; --apply-plan already has one") }
        if dryRun, gc { throw ValidationError("--gc runs after applying; with --dry-run nothing is applied") }
    }

    func run() async throws {
        try await retain()
    }

    private func retain() async throws {
        let loadedPolicy = try policy.map(loadPolicy)
        let location = try store.location()
        let lock = try takeLock(location, dryRun ? .shared : .exclusive, wait: store.lockWait)
        defer { withExtendedLifetime(lock) {} }
        let storage = try openStorage(location)
        let timings = TimingReporter(output.reporter)

        let plan: RetentionPlan
        if let loadedPolicy {
            let findings: [StoreFinding]
            (plan, findings) = try await PlanRetention(storage: storage, location: location, jobs: output.jobs, reporter: timings).run(loadedPolicy)
            if !output.quiet, !output.json { for finding in findings { printLine("warning: \(finding)") } }
        } else {
            plan = try loadPlan(applyPlan!, root: location.root)
        }
        if let planOut {
            do {
                try plan.encoded().write(to: URL(fileURLWithPath: planOut), options: .atomic)
            } catch {
                throw CommandFailure("cannot write the plan to \(planOut): \(error)", status: ExitStatus.failure)
            }
        }
        if dryRun {
            if output.json { try writeJSON(plan) } else if !output.quiet { renderPlan(plan) }
            return
        }
        if !plan.tripped.isEmpty, !force {
            if output.json { try writeJSON(plan) } else if !output.quiet { renderSummary(plan) }
            let breaker = RetentionError.circuitBreaker(
                maxDeletePercent: plan.maxDeletePercent,
                repositories: plan.tripped.map { "\($0.repository): \($0.breaker.deleted) of \($0.breaker.tags) tags (\(Int($0.breaker.percent.rounded()))%)" })
            throw CommandFailure(breaker.description, status: ExitStatus.refused)
        }
        if let shortfall = plan.pullHistory?.shortfall, !force {
            if output.json { try writeJSON(plan) } else if !output.quiet { renderSummary(plan) }
            throw RetentionError.insufficientPullHistory(shortfall)
        }
        try await apply(plan, storage: storage, location: location, timings: timings)
    }

    private func apply(_ plan: RetentionPlan, storage: any StoreStorage, location: StoreLocation, timings: TimingReporter) async throws {
        var collect: GCOptions?
        if gc {
            var options = GCOptions()
            options.gracePeriod = gracePeriod
            options.settle = settle
            options.jobs = output.jobs
            collect = options
        }
        var application = ApplyRetention(
            storage: storage, location: location, force: force, collect: collect,
            arguments: CommandLine.arguments.joined(separator: " "), reporter: timings)
        application.metricsFile = metricsFile
        do {
            application.trash = try StoreSettings.load(location).trashChoice(flag: nil, keepFor: nil)
        } catch {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        }
        let outcome: ApplyRetention.Outcome
        do {
            outcome = try await application.run(plan)
        } catch let error as GCError {
            throw CommandFailure(error.description, status: ExitStatus.refused)
        } catch let error as StateStoreError {
            throw CommandFailure("cannot record the run in the state database: \(error)", status: ExitStatus.failure)
        }
        let result = outcome.result
        if output.json {
            try writeJSON(AppliedReport(run: outcome.run.rawValue, plan: plan, result: result, gc: outcome.gc))
        } else if !output.quiet {
            renderResult(result, gc: outcome.gc, gcRun: outcome.gcRun, run: outcome.run, timings: timings)
        }
        if !result.refused.isEmpty {
            let lines = result.refused.map { "  \($0.repository): \($0.refused!)" }
            throw CommandFailure((["refused \(result.refused.count) repositor\(result.refused.count == 1 ? "y" : "ies") that changed since the plan (make a new plan):"] + lines).joined(separator: "\n"), status: ExitStatus.refused)
        }
        if !outcome.failures.isEmpty {
            throw CommandFailure("\(outcome.failures.count) deletion(s) failed:\n  " + outcome.failures.joined(separator: "\n  "), status: ExitStatus.partialFailure)
        }
    }

    private func loadPolicy(_ file: String) throws -> RetentionPolicy {
        do {
            return try RetentionPolicy.load(file: file)
        } catch {
            // One problem stays on the `regkeeper:` line; several get a line each.
            let separator = error.errors.count == 1 ? " " : "\n"
            throw CommandFailure("invalid policy:" + separator + error.description, status: ExitStatus.failure)
        }
    }

    private func loadPlan(_ file: String, root: String) throws -> RetentionPlan {
        let plan: RetentionPlan
        do {
            plan = try RetentionPlan.decode(try Data(contentsOf: URL(fileURLWithPath: file)), file: file)
        } catch let error as RetentionError {
            throw CommandFailure(error.description, status: ExitStatus.failure)
        } catch {
            throw CommandFailure("cannot read plan \(file): \(error.localizedDescription)", status: ExitStatus.failure)
        }
        if let planned = plan.store, planned != root {
            throw CommandFailure(RetentionError.otherStore(planned: planned, given: root).description, status: ExitStatus.failure)
        }
        return plan
    }

    // MARK: Rendering

    private func renderPlan(_ plan: RetentionPlan) {
        for repository in plan.repositories {
            printLine("\(repository.repository) (rule \(repository.rule)): \(headline(repository))")
            let width = repository.tags.map(\.tag.value.count).max() ?? 0
            let byWidth = repository.tags.map { $0.decidedBy?.count ?? 1 }.max() ?? 1
            for decision in repository.tags {
                let pushed = decision.pushedAt.map { ago($0, plan.createdAt) } ?? "?"
                printLine("  \(pad(decision.action.rawValue, 6)) \(pad(decision.tag.value, width)) \(pad(pushed, 5, right: true))  \(pad(decision.decidedBy ?? "-", byWidth))  \(decision.reason)")
            }
            for manifest in repository.manifests where manifest.action == .delete || manifest.becomesUntagged {
                let note = manifest.becomesUntagged ? " (becomes untagged)" : ""
                printLine("  \(pad(manifest.action.rawValue, 6)) manifest \(manifest.digest)\(note): \(manifest.reason)")
            }
            for finding in repository.findings { printLine("  warning: \(finding)") }
        }
        renderSummary(plan)
    }

    private func renderSummary(_ plan: RetentionPlan) {
        printLine("\(plan.repositories.count) repositories governed by \(plan.policy), \(plan.ungoverned) left alone: keep \(plan.tagsKept) tags, delete \(plan.tagsDeleted) tags and \(plan.manifestsDeleted) untagged manifests")
        if let pulls = plan.pullHistory {
            printLine(pulls.summary)
            if let shortfall = pulls.shortfall { printLine("pull history too short: \(shortfall); applying stops unless --force") }
        }
        if !plan.tripped.isEmpty {
            printLine("circuit breaker: \(plan.tripped.count) repositor\(plan.tripped.count == 1 ? "y" : "ies") would lose more than \(plan.maxDeletePercent)% of their tags; applying stops unless --force:")
            for repository in plan.tripped { printLine("  \(repository.repository): \(headline(repository))") }
        }
    }

    private func renderResult(_ result: RetentionResult, gc: GCResult?, gcRun: RunID?, run: RunID, timings: TimingReporter) {
        for repository in result.repositories {
            for skipped in repository.skipped { printLine("\(repository.repository): \(skipped)") }
        }
        let forced = result.forced ? " (circuit breaker or pull history refusal overridden by --force)" : ""
        printLine("deleted \(result.tagsDeleted) tags and \(result.manifestsDeleted) untagged manifests in \(result.repositories.count) repositories\(forced); run \(run), see `regkeeper history show \(run)`")
        if let gc {
            printLine("gc: \(gc.applied.blobs.count) blobs, \(gc.applied.links.count) dangling links, \(gc.applied.uploads.count) uploads: freed \(gc.applied.bytesFreed.formattedBytes)"
                + (gcRun.map { "; run \($0)" } ?? ""))
            if !gc.applied.isEmpty {
                printLine("restart the registry (or run it with storage.cache.blobdescriptor off): its cache may still list swept blobs")
            }
        } else if result.manifestsDeleted > 0 {
            printLine("run `regkeeper gc` (or retain --gc) to free the blobs of deleted manifests")
        }
        printLine("time: " + timings.phases.map { "\($0.name) \($0.elapsed.formattedSeconds)" }.joined(separator: ", "))
    }

    private func headline(_ repository: RepositoryPlan) -> String {
        let breaker = repository.breaker
        return "\(breaker.tags) tags, delete \(breaker.deleted) (\(Int(breaker.percent.rounded()))%), \(repository.manifestsDeleted.count) untagged manifests deleted" + (breaker.tripped ? " [circuit breaker]" : "")
    }
}

/// What `retain --json` prints after applying.
private struct AppliedReport: Encodable {
    var run: Int64
    var plan: RetentionPlan
    var result: RetentionResult
    var gc: GCResult?
}

private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
    let padding = String(repeating: " ", count: max(0, width - text.count))
    return right ? padding + text : text + padding
}

private func ago(_ date: Date, _ now: Date) -> String {
    let seconds = max(0, Int(now.timeIntervalSince(date)))
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size { return "\(seconds / size)\(unit)" }
    return "\(seconds)s"
}
