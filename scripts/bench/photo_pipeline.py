#!/usr/bin/env python3
"""Peer for `vigil bench pipeline`: the same photo pipeline in Python with onnxruntime + OpenCV.

decode (cv2.imread) -> letterbox + detect (SCRFD or YuNet) -> NMS -> similarity alignment to the
ArcFace template (cv2.estimateAffinePartial2D + warpAffine) -> embed -> L2-normalise, one image
at a time, every face of each image embedded. Prints JSON with images/s and per-stage ms.
"""
import argparse
import multiprocessing
import json
import time

import cv2
import numpy as np
import onnxruntime as ort

TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)


# onnxruntime's documented knob `session.intra_op.allow_spinning`, off as vigil runs it: with
# 2 intra-op threads on 2 cores, a detector's pool thread spinning after its run takes the core
# the recognizer needs (measured: 23.4 images/s against 14.8 with onnxruntime's default, on).
SPINNING = "0"


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if SPINNING is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", SPINNING)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def letterbox(image, size):
    h, w = image.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:resized.shape[0], :resized.shape[1]] = resized
    return canvas, scale


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        overlap = inter / (area[i] + area[order[1:]] - inter)
        order = order[1:][overlap <= iou]
    return keep


def detect_scrfd(sess, image_bgr, size, threshold):
    canvas, scale = letterbox(image_bgr, size)
    blob = (canvas[:, :, ::-1].astype(np.float32) - 127.5) / 128.0
    blob = blob.transpose(2, 0, 1)[None]
    outputs = sess.run(None, {sess.get_inputs()[0].name: blob})
    boxes, scores, points = [], [], []
    for level, stride in enumerate((8, 16, 32)):
        score = outputs[level][:, 0]
        bbox = outputs[level + 3] * stride
        kps = outputs[level + 6] * stride
        n = size // stride
        ys, xs = np.mgrid[:n, :n]
        centres = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float32) * stride
        centres = np.repeat(centres, 2, axis=0)
        keep = score >= threshold
        c = centres[keep]
        b = bbox[keep]
        boxes.append(np.stack([c[:, 0] - b[:, 0], c[:, 1] - b[:, 1], c[:, 0] + b[:, 2], c[:, 1] + b[:, 3]], -1))
        scores.append(score[keep])
        points.append((kps[keep].reshape(-1, 5, 2) + c[:, None, :]))
    boxes = np.concatenate(boxes) / scale
    scores = np.concatenate(scores)
    points = np.concatenate(points) / scale
    keep = nms(boxes, scores, 0.4)
    return boxes[keep], scores[keep], points[keep]


def detect_yunet(sess, image_bgr, size, threshold):
    canvas, scale = letterbox(image_bgr, size)
    blob = canvas.astype(np.float32).transpose(2, 0, 1)[None]
    names = [o.name for o in sess.get_outputs()]
    outputs = dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: blob})))
    boxes, scores, points = [], [], []
    for stride in (8, 16, 32):
        cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        n = size // stride
        ys, xs = np.mgrid[:n, :n]
        cells = np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float32)
        keep = score >= threshold
        b = outputs[f"bbox_{stride}"][0][keep]
        k = outputs[f"kps_{stride}"][0][keep].reshape(-1, 5, 2)
        c = cells[keep]
        cx = (c[:, 0] + b[:, 0]) * stride
        cy = (c[:, 1] + b[:, 1]) * stride
        w = np.exp(b[:, 2]) * stride
        h = np.exp(b[:, 3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1))
        scores.append(score[keep])
        points.append((k + c[:, None, :]) * stride)
    boxes = np.concatenate(boxes) / scale
    scores = np.concatenate(scores)
    points = np.concatenate(points) / scale
    keep = nms(boxes, scores, 0.3)
    return boxes[keep], scores[keep], points[keep]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", required=True)
    parser.add_argument("--detector", default="scrfd_2.5g")
    parser.add_argument("--recognizer", default="w600k_mbf_int8")
    parser.add_argument("--detector-size", type=int, default=640)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--adaptive-min", type=int, default=0,
                        help="dynamic-input detectors: run at the image's longer side rounded up to 32, "
                             "at least this, at most --detector-size (as vigil does); 0 = always --detector-size")
    parser.add_argument("--list", required=True, help="file with one image path per line")
    parser.add_argument("--processes", type=int, default=1,
                        help="worker processes side by side, each with --threads intra-op threads and "
                             "every N-th image (as vigil's workers run); the time includes their start")
    args = parser.parse_args()
    files = {"scrfd_2.5g": "det_2.5g.onnx", "scrfd_500m": "det_500m.onnx",
             "yunet": "face_detection_yunet_2023mar.onnx", "yunet_dynamic": "face_detection_yunet_2023mar_dynamic.onnx",
             "w600k_mbf_int8": "w600k_mbf_int8.onnx", "fr_feature": "faceplugin/fr_feature.onnx"}
    paths = [line.strip() for line in open(args.list) if line.strip()]
    model_paths = (f"{args.models}/{files[args.detector]}", f"{args.models}/{files[args.recognizer]}")
    if args.processes <= 1:
        faces, totals, start, end = run_images(args, model_paths, paths)
    else:
        # the way vigil runs: N workers of `--threads` intra-op threads each, side by side,
        # each taking every N-th image (processes: Python threads would share the GIL)
        shares = [paths[k::args.processes] for k in range(args.processes)]
        with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
            results = pool.starmap(run_images, [(args, model_paths, share) for share in shares])
        faces = sum(r[0] for r in results)
        totals = {k: sum(r[1][k] for r in results) for k in results[0][1]}
        # from the first worker ready to the last one done (CLOCK_MONOTONIC is system-wide):
        # the interpreters' start and the sessions' loading are not timed, as vigil's are not
        start, end = min(r[2] for r in results), max(r[3] for r in results)
    elapsed = end - start
    n = len(paths)
    print(json.dumps({
        "peer": f"python onnxruntime {ort.__version__} + opencv {cv2.__version__}",
        "images": n, "faces": faces, "threads": args.threads, "processes": args.processes,
        "seconds": elapsed,
        "images_per_second": n / elapsed,
        "stage_ms": {k: 1000 * v / n for k, v in totals.items()},
    }))


def run_images(args, model_paths, paths):
    """Every image of `paths` through the pipeline: faces, seconds per stage, and when the
    timed part started and ended (after the sessions are open)."""
    detector = session(model_paths[0], args.threads)
    recognizer = session(model_paths[1], args.threads)
    detect = detect_yunet if args.detector.startswith("yunet") else detect_scrfd
    totals = {"decode": 0.0, "detect": 0.0, "align": 0.0, "embed": 0.0}
    faces = 0
    start = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        size = args.detector_size
        if args.adaptive_min and args.detector != "yunet":
            longer = -(-max(image.shape[:2]) // 32) * 32
            size = min(max(longer, args.adaptive_min), max(args.detector_size, args.adaptive_min))
        boxes, scores, points = detect(detector, image, size, args.threshold)
        t2 = time.perf_counter()
        crops = []
        for p in points:
            matrix, _ = cv2.estimateAffinePartial2D(p.astype(np.float32), TEMPLATE, method=cv2.LMEDS)
            crops.append(cv2.warpAffine(image, matrix, (112, 112), borderValue=0.0))
        t3 = time.perf_counter()
        for crop in crops:
            if args.recognizer == "w600k_mbf_int8":
                blob = (crop[:, :, ::-1].astype(np.float32) - 127.5) / 127.5
            else:
                blob = (crop.astype(np.float32) - 127.0) / 128.0
            embedding = recognizer.run(None, {recognizer.get_inputs()[0].name: blob.transpose(2, 0, 1)[None]})[0][0]
            embedding /= np.linalg.norm(embedding)
        t4 = time.perf_counter()
        faces += len(crops)
        totals["decode"] += t1 - t0
        totals["detect"] += t2 - t1
        totals["align"] += t3 - t2
        totals["embed"] += t4 - t3
    return faces, totals, start, time.perf_counter()


if __name__ == "__main__":
    main()
