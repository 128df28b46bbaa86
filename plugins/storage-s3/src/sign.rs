//! S3 requests as the API reference writes them: unsigned URLs built here (sub-resources such
//! as `?uploads` without a value, AWS percent-encoding), signed with SigV4 in the
//! `Authorization` header by `aws-sigv4`, the signer of the AWS SDKs (smithy-rs).

use std::time::SystemTime;

use aerospike_backup_plugin::http::text::percent_encode;
use aerospike_backup_plugin::http::{Method, Request};
use aerospike_backup_plugin::{Error, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// How a request's body enters its signature.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// The body's SHA-256 is signed (`x-amz-content-sha256: <hex>`); small XML bodies and
    /// empty requests.
    Signed(&'a [u8]),
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`: object and part data, which would otherwise be
    /// hashed twice (TLS protects it in transit; S3 accepts this for every operation we use).
    Unsigned,
}

/// The signing identity: static or temporary keys the host resolved.
#[derive(Debug, Clone)]
pub struct Signer {
    identity: Identity,
    region: String,
}

impl Signer {
    pub fn new(key: &str, secret: &str, token: Option<&str>, region: &str) -> Signer {
        let creds = Credentials::new(key, secret, token.map(str::to_string), None, "abs-host");
        Signer {
            identity: creds.into(),
            region: region.to_string(),
        }
    }

    /// `req` with `Authorization`, `x-amz-date`, `x-amz-content-sha256` (and with temporary
    /// keys `x-amz-security-token`) added. Every header already on `req` is signed.
    pub fn sign(&self, req: Request, payload: Payload<'_>) -> Result<Request> {
        self.sign_at(req, payload, SystemTime::now())
    }

    /// [`Signer::sign`] at a given time (tests compare with published signatures).
    pub fn sign_at(&self, req: Request, payload: Payload<'_>, time: SystemTime) -> Result<Request> {
        let mut settings = SigningSettings::default();
        // S3 signs the path as sent (encoded once) and never normalises it.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| Error::other(format!("sigv4: {e}")))?
            .into();
        let body = match payload {
            Payload::Signed(b) => SignableBody::Bytes(b),
            Payload::Unsigned => SignableBody::UnsignedPayload,
        };
        let signable = SignableRequest::new(
            req.method.as_str(),
            req.url.as_str(),
            req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            body,
        )
        // The signer's errors name the URL part that failed, never the keys.
        .map_err(|e| Error::other(format!("sigv4: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| Error::other(format!("sigv4: {e}")))?
            .into_parts();
        let (headers, _query) = instructions.into_parts();
        let mut req = req;
        for h in headers {
            req = req.header(h.name(), h.value().to_string());
        }
        Ok(req)
    }
}

/// A query string from (name, value) pairs, percent-encoded as SigV4 and S3 expect; a
/// `None` value is a bare sub-resource (`uploads`, not `uploads=` or `uploads=1`).
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let encode = |s: &str| percent_encode(s, false);
    pairs
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{}={}", encode(k), encode(v)),
            None => encode(k),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A request of `method` to `url`, signed when there are keys.
pub fn request(
    signer: Option<&Signer>,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    payload: Payload<'_>,
) -> Result<Request> {
    let mut req = Request::new(method, url);
    if method == Method::Delete {
        // The client sends a length only with a body or for PUT/POST; some S3 servers
        // (s3s) answer 411 to a DELETE without one, as AWS's own SDKs always send it.
        req = req.header("content-length", "0");
    }
    for (n, v) in headers {
        req = req.header(*n, v.clone());
    }
    match signer {
        Some(s) => s.sign(req, payload),
        // Anonymous: a public bucket, or a gateway that authenticates otherwise.
        None => Ok(req),
    }
}
