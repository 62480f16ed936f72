"""Cameras: the device list (catalogue cameras under the ids Verkada knows them by) and footage and
thumbnail links."""

import base64
import time

from portal.sandbox import json_response, route

from ..catalog import CAMERA_STORES, CAMERAS, STORE_ZONES
from .replies import error_reply


class CamerasMixin:
    def reid_cameras(self, ids):
        with self.lock:
            self.camera_ids.update({str(k): str(v) for k, v in ids.items() if k in self.camera_ids})

    def known_camera(self, camera_id):
        return camera_id in self.camera_ids.values()

    # --- cameras and footage --------------------------------------------------------
    def _camera_and_time(self, request):
        camera_id = request.args.get("camera_id")
        if not self.known_camera(camera_id):
            return None, None, error_reply(404, f"Camera {camera_id!r} not found")
        try:
            return camera_id, int(request.args["timestamp"]), None
        except (KeyError, ValueError):
            return None, None, error_reply(400, "timestamp (unix seconds) is required")

    @route("/cameras/v1/footage/thumbnails/link")
    def thumbnail_link(self, request):
        if refused := self._gate(request):
            return refused
        camera_id, timestamp, error = self._camera_and_time(request)
        if error:
            return error
        expiry = int(request.args.get("expiry", 3600))
        with self.lock:
            self.links_served["thumbnail"] += 1
        url = f"https://sandbox.verkada.example/thumbnails/{camera_id}/{timestamp}.jpg?expires={int(time.time()) + expiry}"
        return json_response({"url": url, "timestamp": timestamp, "expiry": expiry})

    @route("/cameras/v1/footage/link")
    def footage_link(self, request):
        if refused := self._gate(request):
            return refused
        camera_id, timestamp, error = self._camera_and_time(request)
        if error:
            return error
        with self.lock:
            self.links_served["footage"] += 1
        return json_response({"url": f"https://sandbox.verkada.example/command/history/{camera_id}?t={timestamp}"})

    @route("/cameras/v1/devices")
    def devices(self, request):
        if refused := self._gate(request):
            return refused
        try:
            size = min(200, max(1, int(request.args.get("page_size", 100))))
            offset = int(base64.urlsafe_b64decode(request.args["page_token"].encode())) if request.args.get("page_token") else 0
        except (ValueError, TypeError):
            return error_reply(400, "invalid page_size or page_token")
        cameras = [
            {"camera_id": self.camera_ids[c["camera_id"]], "name": c["camera_name"], "site": c["camera_location"],
             "site_id": f"site-{c['camera_location'][:12]}", "model": c["camera_model"], "serial": f"SN{n:06d}",
             "status": "Live",
             "timezone": STORE_ZONES[CAMERA_STORES[c["camera_id"]]]}
            for n, c in enumerate(CAMERAS)
        ]
        more = offset + size < len(cameras)
        token = base64.urlsafe_b64encode(str(offset + size).encode()).decode() if more else None
        return json_response({"cameras": cameras[offset:offset + size], "next_page_token": token})
