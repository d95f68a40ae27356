import Nudge
import Testing

/// A big-endian u32, as IDX headers store them.
private func bigEndian(_ value: UInt32) -> [UInt8] {
    [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: value >> $0) }
}

@Suite("Public API: files, data sets, threads")
struct FilesAPITests {
    /// A trained-looking network with metadata and a normalisation, so that a round trip has
    /// everything a model file holds.
    private func sample() throws -> Network {
        let net = try Network(layerSizes: [3, 5, 2], activations: [.leakyRelu, .softmax], seed: 8)
        try net.setParameters(randomFloats(net.parameterCount, in: -1...1, seed: 9))
        try net.setMetadata("left,right", forKey: "classes")
        try net.setNormalization(InputNormalization(offset: [0.5], scale: [2]))
        return net
    }

    @Test("a network saved to a file or to bytes loads back identical, and predicts the same")
    func saveAndLoad() throws {
        let net = try sample()
        let inputs = randomFloats(7 * 3, in: -2...2, seed: 10)
        let expected = bits(try net.predict(inputs))
        let folder = try ScratchFolder()

        let path = folder.path("model.nudge")
        try ModelFile.save(net, to: path)
        let fromFile = try ModelFile.load(from: path)
        #expect(bits(try fromFile.predict(inputs)) == expected)
        #expect(fromFile.metadataValue(forKey: "classes") == "left,right")
        #expect(fromFile.normalization == net.normalization)
        #expect(fromFile.layerSizes == net.layerSizes && fromFile.activations == net.activations)

        let bytes = try ModelFile.encode(net)
        #expect(bytes.count == (try ModelFile.encodedSize(net)))
        #expect(Array(bytes.prefix(8)) == ModelFile.magic)
        let fromBytes = try ModelFile.decode(bytes)
        #expect(bits(try fromBytes.predict(inputs)) == expected)
        #expect(try ModelFile.encode(fromBytes) == bytes)

        var buffer = [UInt8](repeating: 0, count: bytes.count + 10)
        let written = try buffer.withUnsafeMutableBytes { try ModelFile.encode(net, into: $0) }
        #expect(written == bytes.count)
        #expect(Array(buffer.prefix(written)) == bytes)
        let fromRaw = try buffer.withUnsafeBytes { try ModelFile.decode(UnsafeRawBufferPointer(rebasing: $0[0..<written])) }
        #expect(bits(try fromRaw.predict(inputs)) == expected)

        expectError(.capacity, "needs \(bytes.count)") {
            var small = [UInt8](repeating: 0, count: 8)
            return try small.withUnsafeMutableBytes { try ModelFile.encode(net, into: $0) }
        }
        var corrupted = bytes
        corrupted[bytes.count / 2] ^= 0xFF
        expectError(.format, "CRC-32") { try ModelFile.decode(corrupted, source: "corrupted") }
        expectError(.format, "not a Nudge model file") { try ModelFile.decode([UInt8](repeating: 7, count: 64)) }
        expectError(.io) { try ModelFile.load(from: folder.path("missing.nudge")) }
    }

    @Test("IDX files load into a data set, with and without labels")
    func idx() throws {
        let folder = try ScratchFolder()
        // 3 images of 2 x 2 pixels, and their labels.
        let pixels: [UInt8] = [0, 255, 51, 102, 1, 2, 3, 4, 255, 255, 0, 0]
        let images = try folder.write("images.idx", [0, 0, 0x08, 3] + bigEndian(3) + bigEndian(2) + bigEndian(2) + pixels)
        let labelFile = try folder.write("labels.idx", [0, 0, 0x08, 1] + bigEndian(3) + [7, 0, 9])

        let data = try IDX.load(images: images, labels: labelFile)
        #expect(data.count == 3)
        #expect(data.featureCount == 4)
        #expect(data.features == pixels.map { Float($0) * (1 / 255) })
        #expect(data.labels == [7, 0, 9])
        #expect(data.classCount == 10)
        let sum = data.withUnsafeFeatures { $0.reduce(0, +) }
        #expect(abs(sum - data.features.reduce(0, +)) < 1e-6)
        #expect(data.withUnsafeLabels { $0?.count } == 3)

        let unlabelled = try IDX.load(images: images, labels: nil)
        #expect(unlabelled.labels == nil)
        #expect(unlabelled.classCount == 0)
        #expect(unlabelled.withUnsafeLabels { $0 == nil })

        let short = try folder.write("short.idx", [0, 0, 0x08, 1] + bigEndian(2) + [1, 2])
        expectError(.shape, "has 2 labels") { try IDX.load(images: images, labels: short) }
        let foreign = try folder.write("foreign.idx", [1, 2, 3, 4, 5, 6, 7, 8])
        expectError(.format, "not an IDX file") { try IDX.load(images: foreign, labels: nil) }
    }

    @Test("CSV files load into a data set, and a network trains on it in place")
    func csv() throws {
        let folder = try ScratchFolder()
        let path = try folder.write("table.csv", Array("label,a,b\n1,0.5,2\n0,1.5,-3\n1,-1,4\n".utf8))
        let data = try CSV.load(path: path)
        #expect(data.count == 3)
        #expect(data.featureCount == 2)
        #expect(data.features == [0.5, 2, 1.5, -3, -1, 4])
        #expect(data.labels == [1, 0, 1])

        let plain = try folder.write("plain.csv", Array("1;2\n3;4\n".utf8))
        let features = try CSV.load(path: plain, options: CSV.Options(labelColumn: .none, delimiter: UInt8(ascii: ";")))
        #expect(features.features == [1, 2, 3, 4])
        #expect(features.labels == nil)

        let net = try Network(layerSizes: [2, 2], activations: [.softmax], seed: 1)
        let trainer = try Trainer(network: net)
        let summary = try data.withUnsafeFeatures { x in
            try data.withUnsafeLabels { y in try trainer.fit(x, labels: y!) }
        }
        #expect(summary.epochsRun == TrainingOptions().epochs)

        let bad = try folder.write("bad.csv", Array("a,b\n1,x\n".utf8))
        expectError(.format, "bad.csv:2") { try CSV.load(path: bad) }
    }

    @Test("a network predicts, classifies, evaluates and trains on a data set in place, as on its arrays")
    func dataSets() throws {
        let folder = try ScratchFolder()
        let (x, y) = xor(64, seed: 3)
        var text = "label,a,b\n"
        for i in 0..<y.count { text += "\(y[i]),\(x[2 * i]),\(x[2 * i + 1])\n" }
        let data = try CSV.load(path: try folder.write("xor.csv", Array(text.utf8)))
        #expect(data.hasLabels)
        let net = try Network(layerSizes: [2, 8, 2], activations: [.tanh, .softmax], seed: 5)
        #expect(bits(try net.predict(data)) == bits(try net.predict(data.features)))
        #expect(try net.classify(data) == (try net.classify(data.features)))
        let before = try net.evaluate(data)
        #expect(before.loss == (try net.evaluate(data.features, labels: data.labels!)).loss)

        var options = TrainingOptions()
        options.epochs = 200
        options.learningRate = 0.05
        let summary = try Trainer(network: net, options: options).fit(data, validation: data)
        #expect(summary.epochsRun == 200)
        #expect(try net.evaluate(data).loss < before.loss / 2)

        let unlabelled = try CSV.load(path: try folder.write("x.csv", Array("1,2\n3,4\n".utf8)),
                                      options: CSV.Options(labelColumn: .none))
        #expect(!unlabelled.hasLabels)
        #expect(try net.classify(unlabelled).count == 2)
        expectError(.invalidArgument, "no labels") { try net.evaluate(unlabelled) }
        expectError(.invalidArgument, "no labels") { try Trainer(network: net).fit(unlabelled) }
        let wide = try Network(layerSizes: [3, 2], activations: [.softmax], seed: 1)
        expectError(.shape, "2 features", "takes 3") { try wide.predict(data) }
    }

    @Test("the thread count reads, sets and refuses counts out of range")
    func threads() throws {
        let pool = WorkerPool.shared
        let before = pool.threadCount
        #expect(before >= 1 && before <= WorkerPool.maxThreads)
        // Setting the count it already has changes nothing for the tests running beside this one.
        try pool.setThreadCount(before)
        #expect(pool.threadCount == before)
        expectError(.invalidArgument, "thread count is 257") { try pool.setThreadCount(WorkerPool.maxThreads + 1) }
        expectError(.invalidArgument) { try pool.setThreadCount(-1) }
        #expect(pool.threadCount == before)
        #expect(WorkerPool.environmentVariable == "NUDGE_NUM_THREADS")
    }

    @Test("the version string is made of its numbers")
    func version() {
        #expect(NudgeVersion.string == "\(NudgeVersion.major).\(NudgeVersion.minor).\(NudgeVersion.patch)")
        #expect(ModelFile.formatVersion >= 2)
    }
}
