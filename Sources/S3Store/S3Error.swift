/// What can go wrong talking to S3; every case names the bucket and the key (or prefix) and
/// keeps what the server or libcurl said.
public enum S3Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// libcurl could not complete the exchange (refused, reset, timed out) after all retries.
    case transport(operation: String, bucket: String, key: String, curlCode: Int, message: String, attempts: Int)
    /// The server answered with an error status; `code` is S3's error code (`NoSuchKey`, `SlowDown`).
    case http(operation: String, bucket: String, key: String, status: Int, code: String, message: String, attempts: Int)
    /// A 2xx answer whose body could not be read as the expected XML.
    case malformedResponse(operation: String, bucket: String, key: String, reason: String)
    /// `DeleteObjects` answered, but refused some keys.
    case notDeleted(bucket: String, key: String, code: String, message: String)
    /// libcurl, loaded on the first S3 request, is not on this machine (or not usable).
    case libcurlUnavailable(reason: String)

    public var description: String {
        switch self {
        case let .transport(operation, bucket, key, curlCode, message, attempts):
            "s3://\(bucket)/\(key): \(operation) failed after \(attempts) attempt(s): \(message) (curl error \(curlCode))"
        case let .http(operation, bucket, key, status, code, message, attempts):
            "s3://\(bucket)/\(key): \(operation) answered HTTP \(status)\(code.isEmpty ? "" : " \(code)")"
                + "\(message.isEmpty ? "" : ": \(message)")\(attempts > 1 ? " (after \(attempts) attempts)" : "")"
        case let .malformedResponse(operation, bucket, key, reason):
            "s3://\(bucket)/\(key): \(operation) answered something that is not S3 XML: \(reason)"
        case let .notDeleted(bucket, key, code, message):
            "s3://\(bucket)/\(key): DeleteObjects refused it: \(code) \(message)"
        case let .libcurlUnavailable(reason):
            "s3:// roots need libcurl (Debian package libcurl4), which could not be loaded: \(reason)"
        }
    }

    /// The key does not exist (HTTP 404). A missing bucket is not "not found": a store that
    /// cannot be reached must never read as an empty one.
    public var isNotFound: Bool {
        if case .http(_, _, _, 404, let code, _, _) = self { return code != "NoSuchBucket" }
        return false
    }
}
