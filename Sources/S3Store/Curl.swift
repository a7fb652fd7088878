import CCurl
import Foundation

/// One HTTP exchange as the S3 client describes it to libcurl.
struct HTTPRequest {
    var method: String
    /// Fully encoded URL (path-style: endpoint, bucket, key).
    var url: String
    var headers: [(name: String, value: String)]
    /// Sent as the request body (PUT, POST); nil sends none.
    var body: Data?
}

/// Status, headers (lower-cased names) and, unless streamed elsewhere, the body.
struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var body: Data
}

/// A transfer libcurl could not complete (connection refused, timeout, reset), or one a body
/// consumer stopped: `consumerError` carries the consumer's own error.
struct CurlFailure: Error {
    var code: Int
    var message: String
    var consumerError: (any Error)?
    /// Whether any body bytes reached the consumer before the failure (then a retry would repeat them).
    var deliveredBody: Bool
}

/// The state one transfer's callbacks share; reached from C through an unretained pointer that
/// lives exactly as long as `perform`.
private final class Transfer {
    let upload: Data?
    var uploadOffset = 0
    var status = 0
    var headers: [String: String] = [:]
    var body = Data()
    /// Receives the body of a 2xx response as it arrives; error bodies are always collected.
    let consume: ((UnsafeRawBufferPointer) throws -> Void)?
    var consumerError: (any Error)?
    var deliveredBody = false

    init(upload: Data?, consume: ((UnsafeRawBufferPointer) throws -> Void)?) {
        self.upload = upload
        self.consume = consume
    }

    func header(_ line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("HTTP/") {
            // A new response (after 100 Continue or a redirect): forget the previous one's headers.
            headers = [:]
            let parts = text.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        } else if let colon = text.firstIndex(of: ":") {
            let name = text[..<colon].lowercased()
            headers[name] = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }

    /// Returns false to make libcurl abort the transfer.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let consume, (200..<300).contains(status) else {
            body.append(contentsOf: bytes)
            return true
        }
        do {
            deliveredBody = true
            try consume(bytes)
            return true
        } catch {
            consumerError = error
            return false
        }
    }

    func send(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let upload else { return 0 }
        let count = min(buffer.count, upload.count - uploadOffset)
        guard count > 0 else { return 0 }
        upload.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[uploadOffset..<(uploadOffset + count)]))
        }
        uploadOffset += count
        return count
    }
}

private let receiveHeader: regkeeper_curl_data_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    transfer.header(UnsafeRawBufferPointer(start: buffer, count: size * count))
    return size * count
}

private let receiveBody: regkeeper_curl_data_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    return transfer.receive(UnsafeRawBufferPointer(start: buffer, count: size * count)) ? size * count : 0
}

private let sendBody: regkeeper_curl_data_callback = { buffer, size, count, context in
    let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
    return transfer.send(into: UnsafeMutableRawBufferPointer(start: buffer, count: size * count))
}

/// The single owner of one libcurl easy handle. A handle keeps its connection between
/// requests, which is what makes thousands of small S3 requests cheap; it is used by one
/// request at a time (the client's pool hands it to one caller), hence `@unchecked Sendable`.
final class CurlHandle: @unchecked Sendable {
    private let handle: UnsafeMutableRawPointer

    /// Why no handle could be made: libcurl is not there to load, or it made none.
    enum SetupError: Error {
        case libraryUnavailable(reason: String)
        case noHandle
    }

    /// Loads libcurl on the process's first handle (`regkeeper_curl_load`, which also runs its
    /// process-wide setup once), so that a machine without it fails here, not at start.
    init() throws(SetupError) {
        if let reason = regkeeper_curl_load() {
            throw .libraryUnavailable(reason: String(cString: reason))
        }
        guard let handle = regkeeper_curl_easy_init() else { throw .noHandle }
        self.handle = handle
    }

    deinit { regkeeper_curl_easy_cleanup(handle) }

    /// Performs one request signed with AWS SigV4 by libcurl itself.
    func perform(
        _ request: HTTPRequest, signing: (region: String, accessKey: String, secretKey: String),
        timeout: (connect: Int, lowSpeedSeconds: Int),
        consume: ((UnsafeRawBufferPointer) throws -> Void)? = nil
    ) throws(CurlFailure) -> HTTPResponse {
        regkeeper_curl_easy_reset(handle)
        let transfer = Transfer(upload: request.body, consume: consume)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { regkeeper_curl_slist_free_all(headerList) }
        for header in request.headers {
            headerList = regkeeper_curl_slist_append(headerList, "\(header.name): \(header.value)")
        }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code = errorBuffer.withUnsafeMutableBufferPointer { errorPointer -> CURLcode in
            regkeeper_curl_set_string(handle, CURLOPT_URL, request.url)
            regkeeper_curl_set_string(handle, CURLOPT_CUSTOMREQUEST, request.method)
            regkeeper_curl_set_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(signing.region):s3")
            regkeeper_curl_set_string(handle, CURLOPT_USERNAME, signing.accessKey)
            regkeeper_curl_set_string(handle, CURLOPT_PASSWORD, signing.secretKey)
            regkeeper_curl_set_headers(handle, headerList)
            regkeeper_curl_set_long(handle, CURLOPT_NOSIGNAL, 1)
            regkeeper_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, timeout.connect)
            // A stalled transfer (under 1 byte/s for this long) fails and is retried.
            regkeeper_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1)
            regkeeper_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, timeout.lowSpeedSeconds)
            regkeeper_curl_set_long(handle, CURLOPT_TCP_NODELAY, 1)
            // libcurl sends "Expect: 100-continue" with every upload and waits up to 1 s for an
            // answer RGW does not give; the body goes at once instead (the header cannot be
            // removed: libcurl would sign it empty and not send it).
            regkeeper_curl_set_long(handle, CURLOPT_EXPECT_100_TIMEOUT_MS, 0)
            regkeeper_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorPointer.baseAddress)
            regkeeper_curl_set_callback(handle, CURLOPT_HEADERFUNCTION, receiveHeader)
            regkeeper_curl_set_pointer(handle, CURLOPT_HEADERDATA, context)
            regkeeper_curl_set_callback(handle, CURLOPT_WRITEFUNCTION, receiveBody)
            regkeeper_curl_set_pointer(handle, CURLOPT_WRITEDATA, context)
            switch request.method {
            case "HEAD":
                regkeeper_curl_set_long(handle, CURLOPT_NOBODY, 1)
            case "PUT", "POST":
                regkeeper_curl_set_long(handle, CURLOPT_UPLOAD, 1)
                regkeeper_curl_set_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body?.count ?? 0))
                regkeeper_curl_set_callback(handle, CURLOPT_READFUNCTION, sendBody)
                regkeeper_curl_set_pointer(handle, CURLOPT_READDATA, context)
            default:
                break
            }
            return regkeeper_curl_easy_perform(handle)
        }
        // Nothing of this transfer may outlive it in the handle.
        regkeeper_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, nil)
        guard code == CURLE_OK else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw CurlFailure(
                code: Int(code.rawValue),
                message: detail.isEmpty ? String(cString: regkeeper_curl_easy_strerror(code)) : detail,
                consumerError: transfer.consumerError, deliveredBody: transfer.deliveredBody)
        }
        var status = 0
        regkeeper_curl_response_code(handle, &status)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.body)
    }
}
