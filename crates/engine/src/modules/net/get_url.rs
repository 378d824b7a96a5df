//! `get_url`: downloads a URL ON THE HOST (with curl, else wget) into `dest`.
//!
//! Everything happens in one shell invocation, in the order of Ansible's module (see
//! [`SCRIPT`]): the download goes to a temp file next to `dest`, is verified, and replaces
//! `dest` only when its content differs, so reruns report `ok`; check mode makes the same
//! comparison without writing.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::modules::args::Args;
use crate::modules::remote::{self, CHECKSUM_ALGORITHMS, qpath};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

pub struct GetUrl;

const KNOWN: &[&str] = &[
    "url",
    "dest",
    "checksum",
    "mode",
    "owner",
    "group",
    "force",
    "timeout",
    "headers",
    "validate_certs",
    "backup",
    "url_username",
    "url_password",
    "force_basic_auth",
    "use_proxy",
    "http_agent",
    "tmp_dest",
];

/// The download script; `$1` is the URL, `$2` the destination. As Ansible's module: an
/// existing file whose `checksum` matches is kept without a request (unless `force`);
/// otherwise an existing file is sent as `If-Modified-Since` (http/ftp, not `force`) and
/// a `304` keeps it; the body is compared with the file and replaces it when it differs.
/// Check mode asks the same questions with a `HEAD` request, whose empty body is what the
/// file is compared with (a `file://` URL is read, as Python's urllib does).
const SCRIPT: &str = r#"u=$1; d=$2
if [ -d "$d" ]; then n=${u%%\?*}; n=${n##*/}; [ -n "$n" ] || n=index.html; d="$d/$n"; fi
echo "dest=$d"
if [ -e "$d" ] && [ -n "$ALG" ] && [ "$FORCE" != 1 ]; then
  if [ "$(${ALG}sum < "$d" | cut -d' ' -f1)" = "$SUM" ]; then echo "msg=file already exists"; echo status=ok; exit 0; fi
  FORCE=1
fi
dir=$(dirname "$d")
[ -d "$dir" ] || { echo "Destination $dir does not exist" >&2; exit 7; }
t=$(mktemp "$dir/.get_url.XXXXXX") || { echo "Destination $dir is not writable" >&2; exit 1; }
trap 'rm -f "$t"' EXIT
since=; head=
case $u in file:*) ;; *) [ -e "$d" ] && [ "$FORCE" != 1 ] && since=1; [ "$CHECK" = 1 ] && head=1;; esac
if command -v curl >/dev/null 2>&1; then
  set -- -fsSL --max-time "$TIMEOUT" $INSECURE_CURL $HEADERS_CURL -w '%{http_code}'
  [ -n "$since" ] && set -- "$@" -z "$d"
  if [ -n "$head" ]; then set -- "$@" -I -o /dev/null; else set -- "$@" -o "$t"; fi
  code=$(curl "$@" "$u") || { echo "Request failed: curl could not download $u" >&2; exit 4; }
  if [ "$code" = 304 ]; then echo "msg=HTTP Error 304: Not Modified"; echo status=ok; exit 0; fi
elif command -v wget >/dev/null 2>&1; then
  if [ -n "$head" ]; then
    wget -q --spider -T "$TIMEOUT" $INSECURE_WGET $HEADERS_WGET "$u" || { echo "Request failed: wget could not reach $u" >&2; exit 4; }
  else
    wget -q -T "$TIMEOUT" $INSECURE_WGET $HEADERS_WGET -O "$t" "$u" || { echo "Request failed: wget could not download $u" >&2; exit 4; }
  fi
else
  echo "neither curl nor wget is installed on the host; install one of them to use get_url" >&2; exit 5
fi
echo "checksum_src=$(sha1sum < "$t" | cut -d' ' -f1)"
if [ -f "$d" ] && cmp -s "$t" "$d"; then echo msg=OK; echo status=ok; exit 0; fi
if [ "$CHECK" = 1 ]; then echo msg=OK; echo status=changed; exit 0; fi
if [ -n "$ALG" ]; then
  got=$(${ALG}sum < "$t" | cut -d' ' -f1)
  if [ "$got" != "$SUM" ]; then echo "The checksum for $d did not match $SUM; it was $got." >&2; exit 6; fi
fi
if [ -e "$d" ]; then chmod --reference="$d" "$t"; chown --reference="$d" "$t" 2>/dev/null; else chmod $(printf '%o' $((0666 & ~$(umask)))) "$t"; fi
mv -f "$t" "$d" && trap - EXIT && echo msg=OK && echo status=changed
"#;

#[async_trait]
impl Module for GetUrl {
    fn name(&self) -> &'static str {
        "get_url"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["url"], &["dest"]],
            ..Default::default()
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("get_url", args, KNOWN)?;
        let url = a.str("url")?;
        let dest = a.str("dest")?;
        if !["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return Err(a.err(
                "url",
                format!("must start with http://, https://, ftp:// or file://, got '{url}'"),
            ));
        }
        let (alg, sum) = match a.opt_str("checksum")? {
            None => (String::new(), String::new()),
            Some(c) => {
                let (alg, sum) = c
                    .split_once(':')
                    .ok_or_else(|| a.err("checksum", "must look like 'sha256:<hex digest>'"))?;
                if !CHECKSUM_ALGORITHMS.contains(&alg)
                    || !sum.chars().all(|c| c.is_ascii_hexdigit())
                {
                    return Err(a.err(
                        "checksum",
                        format!(
                            "must be <algorithm>:<hex> with one of {}",
                            CHECKSUM_ALGORITHMS.join(", ")
                        ),
                    ));
                }
                (alg.to_string(), sum.to_ascii_lowercase())
            }
        };
        let headers = match args.get("headers") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                    )
                })
                .collect(),
            Some(Value::Null) | None => vec![],
            Some(_) => return Err(a.err("headers", "must be a mapping of header names to values")),
        };
        let insecure = !a.bool_or("validate_certs", true)?;
        let vars = [
            ("ALG", alg.clone()),
            ("SUM", sum),
            (
                "FORCE",
                if a.bool_or("force", false)? { "1" } else { "0" }.into(),
            ),
            ("CHECK", if ctx.check_mode { "1" } else { "0" }.into()),
            ("TIMEOUT", a.int_or("timeout", 10)?.to_string()),
            ("INSECURE_CURL", if insecure { "-k" } else { "" }.into()),
            (
                "INSECURE_WGET",
                if insecure {
                    "--no-check-certificate"
                } else {
                    ""
                }
                .into(),
            ),
        ];
        let mut cmd = String::new();
        for (k, v) in vars {
            cmd.push_str(&format!("{k}={}; ", qpath(&v)));
        }
        let hc: Vec<String> = headers
            .iter()
            .map(|h: &String| format!("-H {}", qpath(h)))
            .collect();
        let hw: Vec<String> = headers
            .iter()
            .map(|h| qpath(&format!("--header={h}")))
            .collect();
        // Headers are spliced in as words, already quoted.
        let script = SCRIPT
            .replace("$HEADERS_CURL", &hc.join(" "))
            .replace("$HEADERS_WGET", &hw.join(" "));
        cmd.push_str(&format!(
            "set -- {} {}\n{script}",
            qpath(&url),
            qpath(&dest)
        ));
        let out = remote::run(ctx, cmd).await?;
        let text = out.stdout_str();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        let target = field("dest");
        if out.rc != 0 {
            return Ok(ModuleResult::failed(out.stderr_str().trim().to_string())
                .with("url", url)
                .with("dest", target));
        }
        let changed = field("status") == "changed";
        let mut r = if changed {
            ModuleResult::changed()
        } else {
            ModuleResult::ok()
        };
        r = r
            .with("url", url)
            .with("dest", target.clone())
            .with_msg(field("msg"));
        if !field("checksum_src").is_empty() {
            r = r.with("checksum_src", field("checksum_src"));
        }
        let mode = a.opt_mode("mode")?;
        let (owner, group) = (a.opt_str("owner")?, a.opt_str("group")?);
        if !ctx.check_mode && (mode.is_some() || owner.is_some() || group.is_some()) {
            let st = remote::stat_path(ctx, &target, true, None).await?;
            if st.is_some_and(|s| {
                !remote::attrs_match(&s, mode.as_ref(), owner.as_deref(), group.as_deref())
            }) {
                let fix = remote::set_attrs(
                    ctx,
                    &target,
                    mode.as_ref(),
                    owner.as_deref(),
                    group.as_deref(),
                    false,
                );
                // A failure is this task's result (with its message), not an error.
                match fix.await {
                    Err(ModuleError::Failed(msg)) => return Ok(ModuleResult::failed(msg)),
                    other => other?,
                }
                r.changed = true;
            }
        }
        Ok(r)
    }
}
