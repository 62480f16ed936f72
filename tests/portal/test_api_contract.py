"""The API's contract at the portal level: the error envelope is documented on
every operation, and the shared paginator refuses bad query parameters."""

import pytest
import yaml

from portal.models import SyncRun


@pytest.fixture(scope="module")
def schema():
    """The schema /api/schema/ serves (generated once for the module)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiYamlRenderer

    return yaml.safe_load(OpenApiYamlRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def test_every_operation_documents_the_error_envelope(schema):
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["success", "message", "error", "data"]
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
                  if method in ("get", "post", "put", "patch", "delete")]
    assert len(operations) > 20
    for path, method, operation in operations:
        for code in ("400", "404", "429", "500"):
            content = operation["responses"][code]["content"]["application/json"]["schema"]
            # an app may document its own envelope-shaped answer; the rest get the shared one
            assert content.get("$ref", "").endswith("Envelope"), (path, method, code)


def test_page_parameters_are_documented_as_bounded_integers(schema):
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/portal/runs/"]["get"]["parameters"]}
    assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert parameters["page"] == {"type": "integer", "minimum": 1}


@pytest.mark.parametrize("query", ["page_size=true", "page_size=0", "page_size=-1", "page_size=501",
                                   "page_size=1e3", "page_size=", "page=0", "page=abc", "page=-2"])
def test_a_bad_page_parameter_is_a_400_envelope_never_a_silent_default(admin_client, query):
    reply = admin_client.get(f"/api/portal/runs/?{query}")
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert body["success"] is False and body["message"] == "Invalid request"
    assert query.split("=")[0] in body["data"]["fields"]


def test_good_page_parameters_page(admin_client):
    for _ in range(3):
        SyncRun.objects.create(app="portal", operation="reap_runs", trigger="api")
    reply = admin_client.get("/api/portal/runs/?page_size=2&page=2")
    assert reply.status_code == 200, reply.content
    assert reply.json()["count"] == 3 and len(reply.json()["results"]) == 1
    assert admin_client.get("/api/portal/runs/?page_size=500&page=last").status_code == 200


def test_set_aside_filter_by_an_unknown_run_lists_nothing(admin_client):
    reply = admin_client.get("/api/portal/set-aside/?run=999999")
    assert reply.status_code == 200, reply.content
    assert reply.json()["count"] == 0
    assert admin_client.get("/api/portal/set-aside/?run=abc").status_code == 400


def test_retry_documents_a_non_empty_list_of_ids(schema):
    body = next(v for k, v in schema["components"]["schemas"].items() if k.startswith("SetAsideRetry"))
    assert body["properties"]["ids"]["minItems"] == 1


def test_retry_documents_the_runs_it_queued_as_a_list_not_a_page(schema):
    reply = schema["paths"]["/api/portal/set-aside/retry/"]["post"]["responses"]["202"]
    body = reply["content"]["application/json"]["schema"]
    assert body["type"] == "array" and body["items"]["$ref"].endswith("/SyncRun")
