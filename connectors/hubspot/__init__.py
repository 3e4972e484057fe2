"""HubSpot: everything that talks to the CRM, one module per concern.

- ``client``: the SDK client and the one ``HubSpotCaller`` (limiter slot, retries, backoff) for every call.
- ``streams``: declared streams (name, key, cursor, typed properties) and their raw tables.
- ``pages`` / ``search``: list paging (and the two-ended full read), search paging past the 10,000 cap.
- ``records``: API records -> typed Arrow rows (the one place values are converted).
- ``associations``: v4 batch association reads.
- ``staging``: staged pages and the one-transaction commit of a stream.
- ``run`` / ``extract`` / ``reference``: the extract of object streams and of reference streams.
- ``properties``: the pipeline's own custom properties; ``publish``: writing ROI values back.
"""

from connectors.hubspot.client import HubSpotCaller, HubSpotError, make_client
from connectors.hubspot.extract import HubSpotExtractError, StreamResult, extract_hubspot
from connectors.hubspot.publish import PublishError, PublishResult, publish_to_hubspot

__all__ = [
    "HubSpotCaller",
    "HubSpotError",
    "HubSpotExtractError",
    "PublishError",
    "PublishResult",
    "StreamResult",
    "extract_hubspot",
    "make_client",
    "publish_to_hubspot",
]
