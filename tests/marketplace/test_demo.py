import pytest

from marketplace import demo
from marketplace.models import Connection

from .conftest import oauth_connect


@pytest.mark.django_db
def test_the_demo_connections_point_at_the_sandboxes_and_connect(admin_client):
    demo.seed()
    demo.seed()
    assert Connection.objects.count() == 2
    for connection in Connection.objects.all():
        oauth_connect(admin_client, connection)
        connection.refresh_from_db()
        assert connection.status == Connection.Status.CONNECTED
