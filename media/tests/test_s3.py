"""The media API tests again, with the media storage on S3 (moto's server on 127.0.0.1).

The base classes are reached through their modules, so that pytest does not collect
them a second time here.
"""

from __future__ import annotations

from django.core.files.storage import storages

from media.tests import (
    test_create,
    test_download,
    test_federation,
    test_legacy,
    test_thumbnail,
    test_upload,
)
from media.tests.s3 import OnS3


class S3UploadTest(OnS3, test_upload.UploadTest):
    def test_storage_is_s3(self) -> None:
        self.assertEqual(type(storages["media"]).__name__, "S3Storage")


class S3CreateTest(OnS3, test_create.CreateTest):
    pass


class S3DownloadTest(OnS3, test_download.DownloadTest):
    pass


class S3ThumbnailTest(OnS3, test_thumbnail.ThumbnailTest):
    pass


class S3LegacyMediaTest(OnS3, test_legacy.LegacyMediaTest):
    pass


class S3FederationMediaTest(OnS3, test_federation.FederationMediaTest):
    pass
