import Foundation
@testable import PullLog
import Testing

/// Lines as Distribution 2.8.2 writes them (copied from a `docker-registry serve` run on this
/// machine), and what the parser makes of them.
struct LineParserTests {
    enum Parsed: Equatable {
        case blank, malformed
        case entry(Double)
        case pull(Double, precision: Double, name: String, reference: String)
    }

    func parse(_ line: String) -> Parsed {
        var parser = LineParser()
        let bytes = Array(line.utf8)
        return bytes.withUnsafeBufferPointer { buffer in
            let p = buffer.baseAddress!
            switch parser.parse(p, 0, bytes.count) {
            case .blank: return .blank
            case .malformed: return .malformed
            case .entry(let time): return .entry(time)
            case .pull(let time, let precision, let name, let reference):
                return .pull(time, precision: precision, name: String(decoding: bytes[name], as: UTF8.self),
                             reference: String(decoding: bytes[reference], as: UTF8.self))
            }
        }
    }

    /// 2026-11-30T09:25:46Z.
    static let second = 1_796_030_746.0

    @Test func accessLog() {
        #expect(parse(#"127.0.0.1 - - [30/Nov/2026:09:25:46 +0000] "GET /v2/app/manifests/v1 HTTP/1.1" 200 248 "" "skopeo/1.9.3""#)
            == .pull(Self.second, precision: 1, name: "app", reference: "v1"))
        #expect(parse(#"10.0.0.7 - - [30/Nov/2026:10:25:46 +0100] "GET /v2/team/app/manifests/sha256:e9d61417f4d1780ace0cdd562371e8d9afcfe1607513a735c34230b777bd3a46?ns=x HTTP/1.1" 200 248 "" "containerd""#)
            == .pull(Self.second, precision: 1, name: "team/app", reference: "sha256:e9d61417f4d1780ace0cdd562371e8d9afcfe1607513a735c34230b777bd3a46"))
        #expect(parse(#"127.0.0.1 - - [30/Nov/2026:09:25:46 +0000] "HEAD /v2/app/manifests/v1 HTTP/1.1" 200 0 "" "curl/7.88.1""#) == .entry(Self.second))
        #expect(parse(#"127.0.0.1 - - [30/Nov/2026:09:25:46 +0000] "GET /v2/app/manifests/v1 HTTP/1.1" 404 122 "" "curl/7.88.1""#) == .entry(Self.second))
        #expect(parse(#"127.0.0.1 - - [30/Nov/2026:09:25:46 +0000] "GET /v2/app/blobs/sha256:c5b1 HTTP/1.1" 200 78 "" "skopeo/1.9.3""#) == .entry(Self.second))
        #expect(parse(#"127.0.0.1 - - [30/Nov/2026:09:25:46 +0000] "PUT /v2/app/manifests/v1 HTTP/1.1" 201 0 "" "curl/7.88.1""#) == .entry(Self.second))
        #expect(parse(#"127.0.0.1 - - [30/Nov/2026:09:25:46 +0000] "\x16\x03\x01" 400 0 "" """#) == .entry(Self.second))
        #expect(parse(#"127.0.0.1 - - [30/Nox/2026:09:25:46 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "x""#) == .malformed)
    }

    @Test func textApplicationLog() {
        let pull = #"time="2026-11-30T09:25:46.321146591Z" level=info msg="response completed" go.version=go1.19.8 http.request.host="127.0.0.1:15099" http.request.id=a3a9baee-553c-48c6-b849-27d48c3310bf http.request.method=GET http.request.remoteaddr="127.0.0.1:33278" http.request.uri=/v2/app/manifests/v1 http.request.useragent=skopeo/1.9.3 http.response.contenttype=application/vnd.oci.image.manifest.v1+json http.response.duration="809.787µs" http.response.status=200 http.response.written=248"#
        guard case .pull(let time, 0, "app", "v1") = parse(pull) else {
            Issue.record("not a pull: \(parse(pull))")
            return
        }
        #expect(abs(time - (Self.second + 0.321146591)) < 1e-6)
        let byDigest = #"time="2026-11-30T09:25:46Z" level=info msg="response completed" http.request.method=GET http.request.uri="/v2/a/b/manifests/sha256:e9d61417f4d1780ace0cdd562371e8d9afcfe1607513a735c34230b777bd3a46" http.response.status=200"#
        #expect(parse(byDigest) == .pull(Self.second, precision: 0, name: "a/b", reference: "sha256:e9d61417f4d1780ace0cdd562371e8d9afcfe1607513a735c34230b777bd3a46"))
        let head = #"time="2026-11-30T09:25:46Z" level=error msg="response completed with error" err.code="manifest unknown" http.request.method=HEAD http.request.uri=/v2/app/manifests/v1 http.response.status=404"#
        #expect(parse(head) == .entry(Self.second))
        let startup = #"time="2026-11-30T10:25:46+01:00" level=info msg="listening on 127.0.0.1:15099" go.version=go1.19.8"#
        #expect(parse(startup) == .entry(Self.second))
        // journalctl without -o cat puts its own header first.
        #expect(parse("Nov 30 09:25:46 host docker-registry[812]: " + pull.replacingOccurrences(of: ".321146591", with: ""))
            == .pull(Self.second, precision: 0, name: "app", reference: "v1"))
        #expect(parse(#"time="yesterday" level=info msg="response completed""#) == .malformed)
    }

    @Test func jsonApplicationLog() {
        let pull = #"{"go.version":"go1.19.8","http.request.host":"127.0.0.1:15099","http.request.id":"8336d230","http.request.method":"GET","http.request.remoteaddr":"127.0.0.1:33296","http.request.uri":"/v2/app/manifests/v1","http.request.useragent":"curl/7.88.1","http.response.contenttype":"application/vnd.oci.image.manifest.v1+json","http.response.duration":"2.23872ms","http.response.status":200,"http.response.written":248,"level":"info","msg":"response completed","time":"2026-11-30T09:25:46Z"}"#
        #expect(parse(pull) == .pull(Self.second, precision: 0, name: "app", reference: "v1"))
        #expect(parse(pull.replacingOccurrences(of: #""http.response.status":200"#, with: #""http.response.status":404"#)) == .entry(Self.second))
        #expect(parse(pull.replacingOccurrences(of: #""http.request.method":"GET""#, with: #""http.request.method":"HEAD""#)) == .entry(Self.second))
        #expect(parse(String(pull.dropLast(20))) == .malformed, "cut short")
        #expect(parse(#"{"level":"info","msg":"redis not configured","time":"2026-11-30T09:25:46Z"}"#) == .entry(Self.second))
    }

    @Test func garbage() {
        #expect(parse("") == .blank)
        #expect(parse("\r") == .blank)
        #expect(parse("panic: runtime error: invalid memory address") == .malformed)
        #expect(parse("goroutine 1 [running]:") == .malformed)
        #expect(parse("{not json") == .malformed)
    }
}
