import Foundation

/// Pulls with skopeo, an independent client that fetches and checks every digest of every
/// platform: the judge of whether a store is still intact after our tools touched it.
public enum Skopeo {
    /// Copies `repository:reference` with all platforms into a throwaway `oci:` layout.
    ///
    /// - Parameter reference: a tag, or a `sha256:` digest to pull one revision (for example an
    ///   index child) by digest.
    /// - Throws: `ProcessError` carrying skopeo's stderr (such as `manifest unknown`) on failure.
    public static func pull(
        server: RegistryServer, repository: String, reference: String, timeout: Double = 60
    ) async throws {
        try await pull(port: server.port, repository: repository, reference: reference, timeout: timeout)
    }

    /// `pull` from the registry on 127.0.0.1:`port`, for registries on other storage (S3).
    public static func pull(port: Int, repository: String, reference: String, timeout: Double = 60) async throws {
        let destination = FileManager.default.temporaryDirectory
            .appendingPathComponent("skopeo-\(UUID().uuidString)", isDirectory: true)
        defer { try? FileManager.default.removeItem(at: destination) }
        let separator = reference.hasPrefix("sha256:") ? "@" : ":"
        let source = "docker://127.0.0.1:\(port)/\(repository)\(separator)\(reference)"
        _ = try await ProcessRunner.run(
            "skopeo",
            ["copy", "--all", "--src-tls-verify=false", source, "oci:\(destination.path):x"],
            timeout: timeout)
    }

    /// For assertions that only care whether the pull worked; the reason is lost, so prefer
    /// `pull` where a failure needs explaining.
    public static func pullSucceeds(server: RegistryServer, repository: String, reference: String) async -> Bool {
        await pullSucceeds(port: server.port, repository: repository, reference: reference)
    }

    /// `pullSucceeds` from the registry on 127.0.0.1:`port`.
    public static func pullSucceeds(port: Int, repository: String, reference: String) async -> Bool {
        do {
            try await pull(port: port, repository: repository, reference: reference)
            return true
        } catch {
            return false
        }
    }
}
