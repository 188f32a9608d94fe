// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "YOLOInference",
    platforms: [.macOS(.v12), .iOS(.v15)],
    products: [
        .library(name: "YOLOCore", targets: ["YOLOCore"]),
        .library(name: "YOLOInference", targets: ["YOLOInference"]),
    ],
    targets: [
        // Pure Swift (Foundation only): metadata.json, letterbox, decoding, NMS. Builds on Linux.
        .target(name: "YOLOCore"),
        // CoreML + Vision; its sources compile to nothing where CoreML is unavailable.
        .target(name: "YOLOInference", dependencies: ["YOLOCore"]),
        .testTarget(name: "YOLOCoreTests", dependencies: ["YOLOCore"]),
    ]
)
