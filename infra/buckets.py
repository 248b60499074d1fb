"""The S3 buckets' shared shape: private (every public access blocked, owner-enforced objects), encrypted, and a
policy that refuses any request not made over TLS. Each bucket adds its own properties and statements."""

from __future__ import annotations

from typing import Any


def private_bucket(logical: str, *, retain: bool = False, **properties: Any) -> dict[str, Any]:
    """The bucket resource named ``logical``, kept when the stack goes (``retain``) or deleted with it."""
    policy = "Retain" if retain else "Delete"
    return {
        logical: {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": policy,
            "UpdateReplacePolicy": policy,
            "Properties": {
                "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
                "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                                   "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                **properties,
            },
        },
    }


def bucket_policy(logical: str, *statements: dict[str, Any]) -> dict[str, Any]:
    """The bucket's policy: ``statements``, then the refusal of every request without TLS."""
    tls_only = {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": [{"Fn::GetAtt": [logical, "Arn"]}, {"Fn::Sub": f"${{{logical}.Arn}}/*"}],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    return {
        f"{logical}Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": logical}, "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [*statements, tls_only]}},
        },
    }
