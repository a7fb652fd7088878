import Crypto
import Foundation

public enum Schema1SigningError: Error, CustomStringConvertible {
    case notAJSONObject(payload: String)

    public var description: String {
        switch self {
        case let .notAJSONObject(payload):
            return "schema1 payload does not end in a JSON object's closing brace: \(payload)"
        }
    }
}

/// Signs a schema1 manifest the way docker's libtrust did ("pretty JWS"), because 2.8.2 verifies
/// the signature before it accepts a schema1 push.
///
/// The signatures are spliced into the payload before its closing brace; `formatLength` and
/// `formatTail` in the protected header let the registry cut them out again to recover the
/// signed payload, which is also what it stores.
enum Schema1Signer {
    static func sign(_ payload: Data, key: P256.Signing.PrivateKey = .init()) throws -> Data {
        let bytes = [UInt8](payload)
        guard let close = bytes.lastIndex(where: { !isSpace($0) }), bytes[close] == UInt8(ascii: "}"),
              let lastContent = bytes[..<close].lastIndex(where: { !isSpace($0) })
        else {
            throw Schema1SigningError.notAJSONObject(payload: String(decoding: payload, as: UTF8.self))
        }
        let formatLength = lastContent + 1
        let tail = Data(bytes[formatLength...])

        let protected = base64URL(try ImageBuilder.encode(Protected(
            formatLength: formatLength, formatTail: base64URL(tail), time: "2000-01-01T00:00:00Z")))
        let signingInput = Data("\(protected).\(base64URL(payload))".utf8)
        let signature = try key.signature(for: signingInput)
        let point = key.publicKey.rawRepresentation
        let entry = SignatureEntry(
            header: .init(
                jwk: .init(crv: "P-256", kty: "EC", x: base64URL(point.prefix(32)), y: base64URL(point.suffix(32))),
                alg: "ES256"),
            signature: base64URL(signature.rawRepresentation),
            protected: protected)

        var signed = Data(bytes[..<formatLength])
        signed.append(Data(",\n   \"signatures\": ".utf8))
        signed.append(try ImageBuilder.encode([entry], pretty: true))
        signed.append(tail)
        return signed
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private static func base64URL(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    private struct Protected: Encodable {
        var formatLength: Int
        var formatTail: String
        var time: String
    }

    private struct SignatureEntry: Encodable {
        struct Header: Encodable {
            struct JWK: Encodable {
                var crv: String
                var kty: String
                var x: String
                var y: String
            }

            var jwk: JWK
            var alg: String
        }

        var header: Header
        var signature: String
        var `protected`: String
    }
}
