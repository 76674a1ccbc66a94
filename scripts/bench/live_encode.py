"""Peer of `vigil bench live`: OpenCV's JPEG encoder (libjpeg-turbo) at quality 75 on the same
frames, one thread, the boxes drawn with cv2.rectangle as vigil draws them.

Usage: live_encode.py FOLDER FRAMES ROUNDS  — prints a JSON report on its last line."""

import json
import sys
import time

import cv2

cv2.setNumThreads(1)
folder, frames, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
images = []
for index in range(1, frames + 1):
    image = cv2.imread(f"{folder}/frame{index:04d}.png", cv2.IMREAD_COLOR)
    if image is None:
        break
    images.append(image)
h, w = images[0].shape[:2]
boxes = [
    ((int(w * 0.2), int(h * 0.2)), (int(w * 0.32), int(h * 0.45)), (83, 200, 0)),
    ((int(w * 0.6), int(h * 0.25)), (int(w * 0.7), int(h * 0.5)), (0, 179, 255)),
]
params = [cv2.IMWRITE_JPEG_QUALITY, 75]
total_bytes = 0
started = time.perf_counter()
for _ in range(rounds):
    for image in images:
        picture = image.copy()
        for top_left, bottom_right, colour in boxes:
            cv2.rectangle(picture, top_left, bottom_right, colour, 3)
        ok, encoded = cv2.imencode(".jpg", picture, params)
        total_bytes += len(encoded)
elapsed = time.perf_counter() - started
count = rounds * len(images)
print(json.dumps({
    "peer": f"opencv {cv2.__version__} imencode, 1 thread",
    "encode_ms_per_picture": round(elapsed * 1e3 / count, 3),
    "mean_jpeg_bytes": round(total_bytes / count),
}))
