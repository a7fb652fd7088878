import Foundation

/// Starts the real registry on a new store (`<temporary directory>/store`); stops it and
/// removes the directory when `body` returns or throws.
public func withRegistry<T>(
    blobDescriptorCache: Bool = false,
    extraConfig: String = "",
    log: RegistryServer.RequestLog? = nil,
    _ body: (RegistryServer, RegistryClient) async throws -> T
) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("regkeeper-registry-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let server = try await RegistryServer.start(
        root: directory.appendingPathComponent("store"), blobDescriptorCache: blobDescriptorCache, extraConfig: extraConfig, log: log)
    defer { server.stop() }
    return try await body(server, RegistryClient(server: server))
}
