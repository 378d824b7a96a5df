//! The signature checks of Keystone's `/v3/s3tokens`: Swift's s3token middleware sends the
//! string to sign that s3api built from the request, the client's signature and the access
//! key; Keystone signs the same string with the credential's secret and compares.
//!
//! Keystone picks the algorithm from the string itself: one that starts with `AWS4` is an
//! AWS Signature Version 4 string (`AWS4-HMAC-SHA256`, the timestamp, the credential scope
//! `date/region/service/aws4_request`, the hash of the canonical request) signed with the
//! key derived from the secret and that scope; anything else is the old V2 string, signed
//! with HMAC-SHA1 and base64. Pure functions, so they are tested against AWS's published
//! examples.

use base64::Engine;
use sha2::Digest;

/// HMAC (RFC 2104) over a hash with a 64-byte block (SHA-1 and SHA-256 both).
fn hmac<D: Digest>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut k = if key.len() > BLOCK {
        D::digest(key).to_vec()
    } else {
        key.to_vec()
    };
    k.resize(BLOCK, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let mut inner = D::new();
    inner.update(&ipad);
    inner.update(msg);
    let inner = inner.finalize();
    let mut outer = D::new();
    outer.update(&opad);
    outer.update(inner);
    outer.finalize().to_vec()
}

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    hmac::<sha2::Sha256>(key, msg)
}

/// The V2 (and V1) signature: base64 of HMAC-SHA1 of the string to sign.
pub fn signature_v2(string_to_sign: &[u8], secret: &str) -> String {
    let mac = hmac::<sha1::Sha1>(secret.as_bytes(), string_to_sign);
    base64::engine::general_purpose::STANDARD.encode(mac)
}

/// The SigV4 signing key: the secret chained through the scope's date, region and service.
pub fn signing_key_v4(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

/// The SigV4 signature (hex) of a string to sign, with the key derived from the scope its
/// third line names. Like Keystone, a string that is not four lines starting with
/// `AWS4-HMAC-SHA256`, or whose scope is not `date/region/service/aws4_request` for service
/// `s3`, `iam` or `sts`, is refused (Keystone: 401 "Invalid EC2 signature.").
pub fn signature_v4(string_to_sign: &[u8], secret: &str) -> Option<String> {
    let parts: Vec<&[u8]> = string_to_sign.split(|b| *b == b'\n').collect();
    if parts.len() != 4 || parts[0] != b"AWS4-HMAC-SHA256" {
        return None;
    }
    let scope: Vec<&str> = std::str::from_utf8(parts[2]).ok()?.split('/').collect();
    if scope.len() != 4 || scope[3] != "aws4_request" || !["s3", "iam", "sts"].contains(&scope[2]) {
        return None;
    }
    let key = signing_key_v4(secret, scope[0], scope[1], scope[2]);
    Some(hex::encode(hmac_sha256(&key, string_to_sign)))
}

/// Why a signature was refused, in Keystone's words.
#[derive(Debug, PartialEq, Eq)]
pub enum SigError {
    /// A V4 string to sign of the wrong shape.
    Invalid,
    /// Well-formed, but not what the secret signs.
    Mismatch,
}

impl SigError {
    pub fn message(&self) -> &'static str {
        match self {
            SigError::Invalid => "Invalid EC2 signature.",
            SigError::Mismatch => "Credential signature mismatch",
        }
    }
}

/// Keystone's `S3Resource._check_signature`: V4 when the string starts with `AWS4`, else
/// V2; the comparison takes the same time whatever the first differing byte.
pub fn check_s3(string_to_sign: &[u8], signature: &str, secret: &str) -> Result<(), SigError> {
    let expected = if string_to_sign.starts_with(b"AWS4") {
        signature_v4(string_to_sign, secret).ok_or(SigError::Invalid)?
    } else {
        signature_v2(string_to_sign, secret)
    };
    if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 and RFC 2202 test case 2 (the key "Jefe").
    #[test]
    fn hmac_matches_the_rfc_vectors() {
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex::encode(hmac::<sha1::Sha1>(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        // A key longer than the block is hashed first (RFC 4231 test case 6).
        assert_eq!(
            hex::encode(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// AWS's S3 SigV4 example "GET Object" (Authenticating Requests: Using the
    /// Authorization Header), with the example secret.
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn sigv4_matches_awss_get_object_example() {
        let sts = "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
                   7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972";
        let sig = signature_v4(sts.as_bytes(), AWS_SECRET).unwrap();
        assert_eq!(
            sig,
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(check_s3(sts.as_bytes(), &sig, AWS_SECRET), Ok(()));
        assert_eq!(
            check_s3(sts.as_bytes(), &sig, "another-secret"),
            Err(SigError::Mismatch)
        );
    }

    /// AWS's SigV4 signing-key example (General Reference, "Examples of how to derive a
    /// signing key": 20120215, us-east-1, iam, with that page's secret).
    #[test]
    fn signing_key_matches_awss_example() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            hex::encode(signing_key_v4(secret, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
    }

    #[test]
    fn malformed_v4_strings_are_refused_as_keystone_does() {
        for bad in [
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request",
            "AWS4-HMAC-SHA1\na\n20130524/us-east-1/s3/aws4_request\nb",
            "AWS4-HMAC-SHA256\na\n20130524/us-east-1/ec2/aws4_request\nb",
            "AWS4-HMAC-SHA256\na\n20130524/us-east-1/s3/aws5_request\nb",
        ] {
            assert_eq!(
                check_s3(bad.as_bytes(), "x", AWS_SECRET),
                Err(SigError::Invalid),
                "{bad}"
            );
        }
    }

    /// AWS's S3 SigV2 example (REST Authentication, "Object GET").
    #[test]
    fn v2_matches_awss_object_get_example() {
        let sts = "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg";
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            signature_v2(sts.as_bytes(), secret),
            "qgk2+6Sv9/oM7G3qLEjTH1a1l1g="
        );
        assert_eq!(
            check_s3(sts.as_bytes(), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=", secret),
            Ok(())
        );
        assert_eq!(
            check_s3(sts.as_bytes(), "qgk2+6Sv9/oM7G3qLEjTH1a1l1h=", secret),
            Err(SigError::Mismatch)
        );
    }
}
