//! TLS settings: a private CA given as `cacert` is trusted, an unknown one is refused with
//! a message naming the identity URL, and `verify: false` connects anyway. The HTTPS
//! endpoint is a small Python TLS server with an openssl-made CA (needs `openssl` and
//! `python3`); it answers 404 to everything, so "TLS worked" shows as the client's
//! "not a Keystone v3 endpoint" error instead of a connection error.

mod cloud_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use cloud_support::{fast_retries, load_config};
use openstack_client::Cloud;

const SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def reply(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_POST = reply
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed for the TLS tests");
    assert!(st.success(), "openssl {args:?} failed");
}

struct Https(Child);

impl Drop for Https {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and the server; returns the port.
fn start_https(dir: &Path) -> (Https, u16) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=spark-openstack test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let mut child = Command::new("python3")
        .args(["-c", SERVER, "srv.pem", "srv.key"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 must be installed for the TLS tests");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the TLS server prints its port");
    (Https(child), port)
}

#[tokio::test]
async fn cacert_is_trusted_unknown_ca_refused_verify_false_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, port) = start_https(dir.path());
    let url = format!("https://127.0.0.1:{port}/v3");
    let ca = dir.path().join("ca.pem");
    let base = [
        ("OS_AUTH_URL", url.as_str()),
        ("OS_USERNAME", "u"),
        ("OS_PASSWORD", "p"),
        ("OS_PROJECT_NAME", "p"),
    ];
    let connect = |extra: &[(&str, &str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        let cfg = load_config(dir.path(), &env);
        async move {
            match Cloud::connect_with(&cfg, 2, fast_retries()).await {
                Ok(_) => panic!("the 404 server cannot authenticate anyone"),
                Err(e) => e.to_string(),
            }
        }
    };

    let msg = connect(&[("OS_CACERT", ca.to_str().unwrap())]).await;
    assert!(
        msg.contains("is not a Keystone v3 endpoint"),
        "TLS with cacert should work: {msg}"
    );

    let msg = connect(&[]).await;
    assert!(
        msg.starts_with(&format!("cannot reach the identity service at {url} (")),
        "{msg}"
    );
    assert!(
        msg.to_lowercase().contains("certificate"),
        "the cause is named: {msg}"
    );

    let msg = connect(&[("OS_INSECURE", "true")]).await;
    assert!(
        msg.contains("is not a Keystone v3 endpoint"),
        "verify false should connect: {msg}"
    );
}
