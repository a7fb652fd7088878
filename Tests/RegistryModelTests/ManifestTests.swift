import Foundation
import RegistryModel
import Testing

@Suite struct ManifestTests {
    let a = "sha256:" + String(repeating: "a", count: 64)
    let b = "sha256:" + String(repeating: "b", count: 64)
    let c = "sha256:" + String(repeating: "c", count: 64)

    func parse(_ json: String) throws -> Manifest { try Manifest(parsing: Data(json.utf8)) }

    @Test func ociImageWithSubject() throws {
        let manifest = try parse("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig",
             "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(a)","size":2},
             "layers":[{"mediaType":"x","digest":"\(b)","size":5}],
             "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(c)","size":9}}
            """)
        #expect(manifest.kind == .ociImage)
        #expect(manifest.blobReferences.map(\.digest.description) == [a, b])
        #expect(manifest.subject?.digest.description == c)
        #expect(manifest.artifactType?.value == "application/vnd.example.sig")
        #expect(manifest.children.isEmpty)
    }

    @Test func indexesAndLists() throws {
        for type in [MediaType.ociIndex, .dockerManifestList] {
            let manifest = try parse("""
                {"schemaVersion":2,"mediaType":"\(type)","manifests":[
                 {"mediaType":"m","digest":"\(a)","size":1,"platform":{"os":"linux","architecture":"amd64"}},
                 {"mediaType":"m","digest":"\(b)","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}
                """)
            #expect(manifest.isIndex)
            #expect(manifest.children.map(\.digest.description) == [a, b])
            #expect(manifest.children.map(\.platform) == ["linux/amd64", "linux/arm64/v8"])
            #expect(manifest.blobReferences.isEmpty)
        }
    }

    @Test func dockerV2AndUntypedOCI() throws {
        let docker = try parse(#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"\#(a)","size":1},"layers":[{"digest":"\#(b)","size":1}]}"#)
        #expect(docker.kind == .dockerV2)
        let untyped = try parse(#"{"schemaVersion":2,"config":{"digest":"\#(a)","size":1},"layers":[]}"#)
        #expect(untyped.kind == .ociImage)
        let untypedIndex = try parse(#"{"schemaVersion":2,"manifests":[{"digest":"\#(a)","size":1}]}"#)
        #expect(untypedIndex.kind == .ociIndex)
    }

    @Test func artifactManifestBlobs() throws {
        let manifest = try parse(#"{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"t","blobs":[{"digest":"\#(a)","size":1}],"subject":{"digest":"\#(b)","size":1}}"#)
        #expect(manifest.kind == .ociArtifact)
        #expect(manifest.layers.map(\.digest.description) == [a])
        #expect(manifest.subject?.digest.description == b)
    }

    @Test func schema1SignedAndUnsigned() throws {
        let unsigned = try parse(#"{"schemaVersion":1,"name":"x","tag":"t","fsLayers":[{"blobSum":"\#(a)"},{"blobSum":"\#(b)"}],"history":[]}"#)
        #expect(unsigned.kind == .dockerSchema1)
        #expect(unsigned.mediaType == .dockerSchema1)
        #expect(unsigned.layers.map(\.digest.description) == [a, b])
        let signed = try parse(#"{"schemaVersion":1,"fsLayers":[{"blobSum":"\#(c)"}],"signatures":[{"header":{},"signature":"x","protected":"y"}]}"#)
        #expect(signed.mediaType == .dockerSchema1Signed)
        #expect(signed.layers.map(\.digest.description) == [c])
    }

    @Test func unknownTypeWalkedByShape() throws {
        let manifest = try parse(#"{"schemaVersion":2,"mediaType":"application/x-custom","config":{"digest":"\#(a)","size":1},"layers":[{"digest":"\#(b)","size":1}]}"#)
        #expect(manifest.kind == .unrecognized("application/x-custom"))
        #expect(manifest.blobReferences.count == 2)
    }

    @Test func errorsSayWhatIsWrong() {
        #expect(throws: ManifestParseError.unknownShape("application/x-custom")) {
            try parse(#"{"schemaVersion":2,"mediaType":"application/x-custom"}"#)
        }
        #expect(throws: ManifestParseError.invalidDigest(field: "layers[1].digest", value: "sha256:nope")) {
            try parse(#"{"schemaVersion":2,"config":{"digest":"\#(a)"},"layers":[{"digest":"\#(b)"},{"digest":"sha256:nope"}]}"#)
        }
        #expect(throws: ManifestParseError.invalidDigest(field: "fsLayers[0].blobSum", value: "x")) {
            try parse(#"{"schemaVersion":1,"fsLayers":[{"blobSum":"x"}]}"#)
        }
        #expect(throws: ManifestParseError.unsupportedSchemaVersion(3)) { try parse(#"{"schemaVersion":3}"#) }
        #expect(throws: ManifestParseError.self) { try parse("not json") }
        #expect(throws: ManifestParseError.self) { try parse("") }
        #expect(throws: ManifestParseError.self) { try parse(#"{"schemaVersion":2,"layers":"x"}"#) }
    }
}

/// The manifest reader is strict JSON: what `JSONSerialization` rejects, it rejects too, and
/// what it accepts reads the same.
@Suite struct ManifestJSONTests {
    let a = "sha256:" + String(repeating: "a", count: 64)

    @Test func escapesAndUnknownFieldsAreHandled() throws {
        let json = #"{"annotations":{"x":[1,2.5e3,-0.1,true,false,null,{"y":"\u00e9\ud83d\ude00"}]},"schemaVersion":2,"mediaType":"application\/vnd.oci.image.manifest.v1+json","config":{"digest":"\#(a)","size":7,"urls":null},"layers":[]}"#
        let manifest = try Manifest(parsing: Data(json.utf8))
        #expect(manifest.kind == .ociImage)
        #expect(manifest.config?.size == 7)
    }

    @Test(arguments: [
        #"{"schemaVersion":2,"config":{"digest":"x"}} trailing"#,
        #"{"schemaVersion":2,}"#,
        #"{"schemaVersion":02}"#,
        #"{"schemaVersion":2,"mediaType":"a\qb"}"#,
        #"{"schemaVersion":2,"mediaType":"\ud800"}"#,
        "{\"schemaVersion\":2,\"mediaType\":\"a\u{01}b\"}",
        #"{"schemaVersion":2.5}"#,
        #"{"schemaVersion":2,"layers":[{"size":1}]}"#,
        #"{"schemaVersion":2,"config":{"digest":"\#(String(repeating: "a", count: 3))","size":"7"}}"#,
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        #"["not an object"]"#,
        #"{"a":tru}"#,
        #"{"a":"unterminated}"#,
    ])
    func rejectsWhatIsNotAValidManifest(_ json: String) {
        #expect(throws: ManifestParseError.self) { try Manifest(parsing: Data(json.utf8)) }
    }

    @Test func nullFieldsAreAbsent() throws {
        let manifest = try Manifest(parsing: Data(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"subject":null}"#.utf8))
        #expect(manifest.subject == nil)
        #expect(manifest.kind == .ociIndex)
    }
}
