import Crypto
import Foundation
import Synchronization

/// Where a bucket is and how to sign for it.
public struct S3Endpoint: Sendable, Hashable {
    /// Scheme, host and port, e.g. `http://127.0.0.1:7480`: requests go path-style to
    /// `<url>/<bucket>/<key>`, the form every S3 implementation accepts.
    public var url: String
    public var region: String
    public var bucket: String
    public var accessKey: String
    public var secretKey: String

    public init(url: String, region: String, bucket: String, accessKey: String, secretKey: String) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.region = region
        self.bucket = bucket
        self.accessKey = accessKey
        self.secretKey = secretKey
    }
}

/// One object in a listing.
public struct S3Object: Sendable, Hashable {
    public var key: String
    public var size: Int64
    public var lastModified: Date
    /// Quoted; `"<md5>-<parts>"` for an object written by a multipart upload.
    public var etag: String
}

/// One page of `ListObjectsV2`.
public struct S3ListPage: Sendable {
    public var objects: [S3Object]
    /// With a delimiter: the "directories" of this level, each ending in the delimiter.
    public var commonPrefixes: [String]
    /// Nil on the last page.
    public var continuationToken: String?
}

/// What HEAD and GET say about an object.
public struct S3ObjectHead: Sendable, Hashable {
    public var size: Int64
    public var lastModified: Date
    /// `x-amz-meta-mtime` when the writer recorded one (regkeeper does, as rclone does), so a
    /// restored store keeps its files' ages; otherwise `lastModified`.
    public var modified: Date
}

/// An open multipart upload: what an abandoned registry upload is on S3.
public struct S3MultipartUpload: Sendable, Hashable {
    public var key: String
    public var uploadID: String
    public var initiated: Date
}

/// A synchronous S3 client on libcurl, which signs every request with SigV4 itself.
///
/// Thread-safe: each request borrows an easy handle from a pool, so concurrent callers each
/// keep a warm connection. Errors from 5xx answers, throttling (503 SlowDown, 429) and broken
/// connections are retried with exponential backoff; a 4xx is thrown at once, naming the key.
public final class S3Client: Sendable {
    public let endpoint: S3Endpoint
    /// Attempts per request, counting the first.
    let maxAttempts: Int
    private let idleHandles = Mutex<[CurlHandle]>([])

    public init(endpoint: S3Endpoint, maxAttempts: Int = 6) {
        self.endpoint = endpoint
        self.maxAttempts = maxAttempts
    }

    /// The most keys `DeleteObjects` takes in one request.
    public static let deleteBatchLimit = 1000
    /// S3's smallest part (except the last) of a multipart upload.
    public static let minimumPartSize = 5 * 1024 * 1024

    // MARK: Objects

    public func getObject(_ key: String) throws(S3Error) -> (data: Data, head: S3ObjectHead) {
        let response = try send("GetObject", key: key, method: "GET", path: objectPath(key))
        return (response.body, try head(from: response, operation: "GetObject", key: key))
    }

    /// Streams an object's content through `consume` as it arrives; retried only while no byte
    /// has been handed out. Rethrows what `consume` throws.
    public func getObject(_ key: String, consume: (UnsafeRawBufferPointer) throws -> Void) throws -> S3ObjectHead {
        // The transfer holds the consumer only while libcurl runs, inside this call.
        let response = try withoutActuallyEscaping(consume) { consume in
            try send("GetObject", key: key, method: "GET", path: objectPath(key), consume: consume)
        }
        return try head(from: response, operation: "GetObject", key: key)
    }

    /// Nil when there is no such key.
    public func headObject(_ key: String) throws(S3Error) -> S3ObjectHead? {
        do {
            let response = try send("HeadObject", key: key, method: "HEAD", path: objectPath(key))
            return try head(from: response, operation: "HeadObject", key: key)
        } catch where error.isNotFound {
            return nil
        }
    }

    /// A single PUT: atomic on S3, the object appears whole or not at all.
    public func putObject(_ key: String, _ data: Data, modified: Date? = nil) throws(S3Error) {
        var headers = [("Content-MD5", Data(Insecure.MD5.hash(data: data)).base64EncodedString())]
        if let modified { headers.append(("x-amz-meta-mtime", Self.mtimeText(modified))) }
        _ = try send("PutObject", key: key, method: "PUT", path: objectPath(key), headers: headers, body: data)
    }

    /// Deleting a key that does not exist succeeds, as on S3.
    public func deleteObject(_ key: String) throws(S3Error) {
        _ = try send("DeleteObject", key: key, method: "DELETE", path: objectPath(key))
    }

    /// Server-side copy within the bucket. S3 gives the copy a new LastModified; `modified`
    /// (the source's time) is recorded as its `x-amz-meta-mtime`, so a move keeps the age that
    /// gc's grace period and re-read go by, as a rename keeps an mtime.
    public func copyObject(from source: String, to destination: String, modified: Date) throws(S3Error) {
        let response = try send(
            "CopyObject", key: destination, method: "PUT", path: objectPath(destination),
            headers: [
                ("x-amz-copy-source", "/\(endpoint.bucket)/\(Self.encodePath(source))"), ("x-amz-metadata-directive", "REPLACE"),
                ("x-amz-meta-mtime", Self.mtimeText(modified)),
            ])
        // S3 may answer 200 and still fail the copy, with an <Error> body.
        if let document = S3XMLDocument.parse(response.body, recordNames: []), document.rootName == "Error" {
            throw .http(
                operation: "CopyObject", bucket: endpoint.bucket, key: source, status: response.status,
                code: document.fields["Code"] ?? "", message: document.fields["Message"] ?? "", attempts: 1)
        }
    }

    // MARK: Listing

    /// One page of `ListObjectsV2`, up to 1,000 keys.
    public func listObjects(prefix: String, delimiter: String? = nil, continuationToken: String? = nil, maxKeys: Int? = nil) throws(S3Error) -> S3ListPage {
        var query = [("list-type", "2"), ("prefix", prefix)]
        if let delimiter { query.append(("delimiter", delimiter)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        if let maxKeys { query.append(("max-keys", String(maxKeys))) }
        let response = try send("ListObjectsV2", key: prefix, method: "GET", path: bucketPath, query: query)
        guard let document = S3XMLDocument.parse(response.body, recordNames: ["Contents", "CommonPrefixes"]),
              document.rootName == "ListBucketResult"
        else { throw .malformedResponse(operation: "ListObjectsV2", bucket: endpoint.bucket, key: prefix, reason: "no ListBucketResult") }
        var objects: [S3Object] = []
        var prefixes: [String] = []
        for record in document.records {
            if record.name == "CommonPrefixes" {
                if let prefix = record.values["Prefix"] { prefixes.append(prefix) }
                continue
            }
            guard let key = record.values["Key"], let size = record.values["Size"].flatMap({ Int64($0) }),
                  let modified = record.values["LastModified"].flatMap(HTTPDate.parseISO8601)
            else { throw .malformedResponse(operation: "ListObjectsV2", bucket: endpoint.bucket, key: prefix, reason: "a Contents entry lacks Key, Size or LastModified") }
            objects.append(S3Object(key: key, size: size, lastModified: modified, etag: record.values["ETag"] ?? ""))
        }
        let truncated = document.fields["IsTruncated"] == "true"
        guard !truncated || document.fields["NextContinuationToken"] != nil else {
            throw .malformedResponse(operation: "ListObjectsV2", bucket: endpoint.bucket, key: prefix, reason: "truncated page without NextContinuationToken")
        }
        return S3ListPage(objects: objects, commonPrefixes: prefixes, continuationToken: truncated ? document.fields["NextContinuationToken"] : nil)
    }

    /// Every page under `prefix`, handed to `body` in order. Any failing page throws: a listing
    /// is complete or it is an error, never silently short.
    public func listAllPages(prefix: String, delimiter: String? = nil, _ body: (S3ListPage) throws(S3Error) -> Void) throws(S3Error) {
        var token: String?
        repeat {
            let page = try listObjects(prefix: prefix, delimiter: delimiter, continuationToken: token)
            try body(page)
            token = page.continuationToken
        } while token != nil
    }

    /// Deletes keys with `DeleteObjects`, up to 1,000 per request; throws the first refusal.
    public func deleteObjects(_ keys: [String]) throws(S3Error) {
        for start in stride(from: 0, to: keys.count, by: Self.deleteBatchLimit) {
            let batch = keys[start..<min(start + Self.deleteBatchLimit, keys.count)]
            var xml = "<Delete><Quiet>true</Quiet>"
            for key in batch { xml += "<Object><Key>\(Self.escapeXML(key))</Key></Object>" }
            xml += "</Delete>"
            let body = Data(xml.utf8)
            let response = try send(
                "DeleteObjects", key: batch.first!, method: "POST", path: bucketPath, query: [("delete", "")],
                headers: [("Content-MD5", Data(Insecure.MD5.hash(data: body)).base64EncodedString()), ("Content-Type", "application/xml")],
                body: body)
            guard let document = S3XMLDocument.parse(response.body, recordNames: ["Deleted", "Error"]) else {
                throw .malformedResponse(operation: "DeleteObjects", bucket: endpoint.bucket, key: batch.first!, reason: "no DeleteResult")
            }
            if let failure = document.records(named: "Error").first {
                throw .notDeleted(bucket: endpoint.bucket, key: failure["Key"] ?? "", code: failure["Code"] ?? "", message: failure["Message"] ?? "")
            }
        }
    }

    // MARK: Multipart uploads

    /// Open multipart uploads under `prefix`, all pages.
    public func listMultipartUploads(prefix: String) throws(S3Error) -> [S3MultipartUpload] {
        var uploads: [S3MultipartUpload] = []
        var markers: (key: String, upload: String)?
        repeat {
            var query = [("prefix", prefix), ("uploads", "")]
            if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.upload)] }
            let response = try send("ListMultipartUploads", key: prefix, method: "GET", path: bucketPath, query: query)
            guard let document = S3XMLDocument.parse(response.body, recordNames: ["Upload"]), document.rootName == "ListMultipartUploadsResult" else {
                throw .malformedResponse(operation: "ListMultipartUploads", bucket: endpoint.bucket, key: prefix, reason: "no ListMultipartUploadsResult")
            }
            for record in document.records(named: "Upload") {
                guard let key = record["Key"], let id = record["UploadId"], let initiated = record["Initiated"].flatMap(HTTPDate.parseISO8601) else {
                    throw .malformedResponse(operation: "ListMultipartUploads", bucket: endpoint.bucket, key: prefix, reason: "an Upload lacks Key, UploadId or Initiated")
                }
                uploads.append(S3MultipartUpload(key: key, uploadID: id, initiated: initiated))
            }
            if document.fields["IsTruncated"] == "true", let key = document.fields["NextKeyMarker"], let upload = document.fields["NextUploadIdMarker"] {
                markers = (key, upload)
            } else {
                markers = nil
            }
        } while markers != nil
        return uploads
    }

    /// Aborting an upload that is already gone succeeds.
    public func abortMultipartUpload(_ upload: S3MultipartUpload) throws(S3Error) {
        do {
            _ = try send("AbortMultipartUpload", key: upload.key, method: "DELETE", path: objectPath(upload.key), query: [("uploadId", upload.uploadID)])
        } catch where error.isNotFound {
            return
        }
    }

    /// Uploads an object in parts of `partSize` bytes pulled from `nextPart` (nil at the end),
    /// for objects too large for one PUT. The object appears only when the upload completes;
    /// on any failure the upload is aborted, so no parts are left behind.
    public func putObjectMultipart(_ key: String, modified: Date? = nil, nextPart: () throws -> Data?) throws {
        var headers: [(String, String)] = []
        if let modified { headers.append(("x-amz-meta-mtime", Self.mtimeText(modified))) }
        let created = try send("CreateMultipartUpload", key: key, method: "POST", path: objectPath(key), query: [("uploads", "")], headers: headers, body: Data())
        guard let uploadID = S3XMLDocument.parse(created.body, recordNames: [])?.fields["UploadId"] else {
            throw S3Error.malformedResponse(operation: "CreateMultipartUpload", bucket: endpoint.bucket, key: key, reason: "no UploadId")
        }
        let upload = S3MultipartUpload(key: key, uploadID: uploadID, initiated: Date())
        do {
            var etags: [String] = []
            while let part = try nextPart() {
                let number = etags.count + 1
                let response = try send(
                    "UploadPart", key: key, method: "PUT", path: objectPath(key),
                    query: [("partNumber", String(number)), ("uploadId", uploadID)],
                    headers: [("Content-MD5", Data(Insecure.MD5.hash(data: part)).base64EncodedString())], body: part)
                guard let etag = response.headers["etag"] else {
                    throw S3Error.malformedResponse(operation: "UploadPart", bucket: endpoint.bucket, key: key, reason: "part \(number) answered without an ETag")
                }
                etags.append(etag)
            }
            var xml = "<CompleteMultipartUpload>"
            for (index, etag) in etags.enumerated() {
                xml += "<Part><PartNumber>\(index + 1)</PartNumber><ETag>\(Self.escapeXML(etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let completed = try send(
                "CompleteMultipartUpload", key: key, method: "POST", path: objectPath(key), query: [("uploadId", uploadID)],
                headers: [("Content-Type", "application/xml")], body: Data(xml.utf8))
            if let document = S3XMLDocument.parse(completed.body, recordNames: []), document.rootName == "Error" {
                throw S3Error.http(
                    operation: "CompleteMultipartUpload", bucket: endpoint.bucket, key: key, status: completed.status,
                    code: document.fields["Code"] ?? "", message: document.fields["Message"] ?? "", attempts: 1)
            }
        } catch {
            try? abortMultipartUpload(upload)
            throw error
        }
    }

    // MARK: Buckets

    /// Creates the bucket; one that this account already owns is fine.
    public func createBucket() throws(S3Error) {
        do {
            _ = try send("CreateBucket", key: "", method: "PUT", path: bucketPath, body: Data())
        } catch {
            guard case .http(_, _, _, 409, "BucketAlreadyOwnedByYou", _, _) = error else { throw error }
        }
    }

    // MARK: Requests

    private var bucketPath: String { "/" + Self.encodePath(endpoint.bucket) }

    private func objectPath(_ key: String) -> String { bucketPath + "/" + Self.encodePath(key) }

    private func head(from response: HTTPResponse, operation: String, key: String) throws(S3Error) -> S3ObjectHead {
        guard let size = response.headers["content-length"].flatMap({ Int64($0) }),
              let lastModified = response.headers["last-modified"].flatMap(HTTPDate.parseRFC1123)
        else { throw .malformedResponse(operation: operation, bucket: endpoint.bucket, key: key, reason: "no Content-Length or Last-Modified") }
        let modified = response.headers["x-amz-meta-mtime"].flatMap { Double($0) }.map { Date(timeIntervalSince1970: $0) }
        return S3ObjectHead(size: size, lastModified: lastModified, modified: modified ?? lastModified)
    }

    private func send(
        _ operation: String, key: String, method: String, path: String, query: [(String, String)] = [],
        headers: [(String, String)] = [], body: Data? = nil
    ) throws(S3Error) -> HTTPResponse {
        do {
            return try send(operation, key: key, method: method, path: path, query: query, headers: headers, body: body, consume: nil)
        } catch let error as S3Error {
            throw error
        } catch {
            preconditionFailure("only a body consumer throws other errors, and there is none: \(error)")
        }
    }

    /// Sends with retries; a 2xx answer is returned, anything else thrown as `S3Error`.
    private func send(
        _ operation: String, key: String, method: String, path: String, query: [(String, String)] = [],
        headers: [(String, String)] = [], body: Data? = nil, consume: ((UnsafeRawBufferPointer) throws -> Void)?
    ) throws -> HTTPResponse {
        // Sorted and fully encoded, with `=` even for empty values: libcurl signs the query as
        // written, and SigV4's canonical query is exactly this form.
        let queryText = query.map { (Self.encode($0.0, keepSlash: false), Self.encode($0.1, keepSlash: false)) }
            .sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let payloadHash = body.map { SHA256.hash(data: $0).map { String(format: "%02x", $0) }.joined() } ?? Self.emptyPayloadHash
        let request = HTTPRequest(
            method: method, url: endpoint.url + path + (queryText.isEmpty ? "" : "?" + queryText),
            headers: headers.map { (name: $0.0, value: $0.1) } + [(name: "x-amz-content-sha256", value: payloadHash)], body: body)
        let handle: CurlHandle
        do throws(CurlHandle.SetupError) {
            if let idle = idleHandles.withLock({ $0.popLast() }) { handle = idle } else { handle = try CurlHandle() }
        } catch .libraryUnavailable(let reason) {
            throw S3Error.libcurlUnavailable(reason: reason)
        } catch {
            throw S3Error.transport(
                operation: operation, bucket: endpoint.bucket, key: key, curlCode: -1, message: "curl_easy_init made no handle", attempts: 0)
        }
        var attempt = 0
        while true {
            attempt += 1
            let retryable: Bool
            let failure: S3Error
            do {
                let response = try handle.perform(
                    request, signing: (endpoint.region, endpoint.accessKey, endpoint.secretKey), timeout: (10, 60), consume: consume)
                if (200..<300).contains(response.status) {
                    idleHandles.withLock { $0.append(handle) }
                    return response
                }
                let document = S3XMLDocument.parse(response.body, recordNames: [])
                let code = document?.fields["Code"] ?? ""
                failure = .http(
                    operation: operation, bucket: endpoint.bucket, key: key, status: response.status, code: code,
                    message: document?.fields["Message"] ?? "", attempts: attempt)
                retryable = response.status >= 500 || response.status == 429 || code == "SlowDown" || code == "RequestTimeout"
            } catch {
                if let consumerError = error.consumerError { throw consumerError }
                failure = .transport(
                    operation: operation, bucket: endpoint.bucket, key: key, curlCode: error.code, message: error.message, attempts: attempt)
                retryable = !error.deliveredBody
            }
            guard retryable, attempt < maxAttempts else { throw failure }
            // 50 ms, 100 ms, … up to 2 s, with jitter so that parallel workers spread out.
            let backoff = min(0.05 * Double(1 << (attempt - 1)), 2.0) * Double.random(in: 0.5...1.0)
            Thread.sleep(forTimeInterval: backoff)
        }
    }

    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    static func mtimeText(_ date: Date) -> String { String(date.timeIntervalSince1970) }

    /// SigV4's URI encoding: unreserved characters stay, everything else is %XX of its UTF-8,
    /// `/` stays in paths. `+` and spaces in keys become %2B and %20.
    static func encode(_ text: String, keepSlash: Bool) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                result += "/"
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    static func encodePath(_ key: String) -> String { encode(key, keepSlash: true) }

    static func escapeXML(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            default: result.append(character)
            }
        }
        return result
    }
}

/// The two date forms S3 uses, parsed without a formatter (listing pages carry thousands).
enum HTTPDate {
    /// `2026-11-30T07:40:12.345Z` (listings).
    static func parseISO8601(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes[4] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return nil }
                value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return nil }
        var fraction = 0.0
        if bytes[19] == UInt8(ascii: "."), let end = bytes[20...].firstIndex(where: { !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
           let digits = number(20..<end) {
            fraction = Double(digits) / pow(10, Double(end - 20))
        }
        return date(year: year, month: month, day: day, hour: hour, minute: minute, second: second, fraction: fraction)
    }

    /// `Mon, 30 Nov 2026 07:40:12 GMT` (Last-Modified header).
    static func parseRFC1123(_ text: String) -> Date? {
        let parts = text.split(separator: " ")
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        guard parts.count == 6, let day = Int(parts[1]), let monthIndex = months.firstIndex(of: String(parts[2])), let year = Int(parts[3]) else {
            return nil
        }
        let clock = parts[4].split(separator: ":").compactMap { Int($0) }
        guard clock.count == 3 else { return nil }
        return date(year: year, month: monthIndex + 1, day: day, hour: clock[0], minute: clock[1], second: clock[2], fraction: 0)
    }

    private static func date(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, fraction: Double) -> Date {
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: Double(timegm(&parts)) + fraction)
    }
}
