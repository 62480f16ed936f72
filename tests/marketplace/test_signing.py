"""The signing algorithms against the contracts' vectors, and the sandboxes'
refusal of bad signatures in each platform's own error shape."""

import time

import pytest
import requests

from marketplace.client.lazada import sign as lazada_sign
from marketplace.client.shopee import sign as shopee_sign
from marketplace.sandbox.lazada import DEMO_APP_KEY
from marketplace.sandbox.shopee import DEMO_PARTNER_ID


def test_it_signs_lazada_calls_like_the_documented_vector():
    params = {"access_token": "test", "app_key": "123456", "order_id": "1234", "sign_method": "sha256",
              "timestamp": "1517820392000"}
    assert lazada_sign("helloworld", "/order/get", params) == (
        "4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A")


def test_it_signs_shopee_calls_like_the_documented_vector():
    signed = shopee_sign("test_partner_key", 2001887, "/api/v2/shop/get_shop_info", 1655714431,
                         "59777174636562737266615546704c6d", 14701711)
    assert signed == "9fdae5aeed86e753249982ec04aa54339280f12d3f456b9e3f7d8ee91e66a2b3"


def test_the_lazada_sandbox_refuses_a_bad_signature_with_an_http_200_error_body(sandbox):
    params = {"app_key": DEMO_APP_KEY, "timestamp": str(int(time.time() * 1000)), "sign_method": "sha256",
              "code": "x", "sign": "00" * 32}
    reply = requests.post(f"{sandbox.url}/lazada/auth/rest/auth/token/create", data=params, timeout=5)
    assert reply.status_code == 200
    body = reply.json()
    assert body["code"] == "IncompleteSignature" and body["type"] and body["request_id"]


def test_the_lazada_sandbox_enforces_the_timestamp_window(sandbox):
    from marketplace.sandbox.lazada import DEMO_APP_SECRET

    params = {"app_key": DEMO_APP_KEY, "timestamp": str(int((time.time() - 7300) * 1000)), "sign_method": "sha256",
              "code": "x"}
    params["sign"] = lazada_sign(DEMO_APP_SECRET, "/auth/token/create", params)
    body = requests.post(f"{sandbox.url}/lazada/auth/rest/auth/token/create", data=params, timeout=5).json()
    assert body["code"] == "InvalidTimestamp"


@pytest.mark.parametrize("path", ["/api/v2/order/get_order_list"])
def test_the_shopee_sandbox_refuses_a_bad_signature(sandbox, path):
    query = {"partner_id": DEMO_PARTNER_ID, "timestamp": int(time.time()), "sign": "ab" * 32,
             "access_token": "t", "shop_id": 1}
    reply = requests.get(f"{sandbox.url}/shopee{path}", params=query, timeout=5)
    assert reply.status_code == 403
    assert reply.json()["error"] == "error_sign"
    assert reply.json()["message"] == "Wrong sign."
