//! `haq ui`: a workflow's store served read-only over HTTP to a browser, live while `haq
//! run` writes to it. The page (embedded in the binary, see [`assets`]) polls a small JSON
//! API ([`api`]); artifacts are addressed by digest only and the report by the names its
//! run stored, so no request ever names a file on disk.

mod api;
mod assets;
mod downsample;
mod source;

use std::net::SocketAddr;
use std::sync::Arc;

use haq_flow::binaries::Binaries;
use haq_flow::Workflow;

pub use downsample::downsample;

/// Requests served at once: the page polls two or three routes a second.
const WORKERS: usize = 4;

/// An answer to one request.
#[derive(Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// `Content-Disposition` filename, for downloads.
    pub download: Option<String>,
    pub location: Option<String>,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        // A stage may store any media type; one that is not a plain header value is sent
        // as bytes.
        let plain = content_type
            .bytes()
            .all(|b| b.is_ascii_graphic() || b == b' ');
        Reply {
            status,
            content_type: if plain {
                content_type
            } else {
                "application/octet-stream"
            }
            .to_string(),
            body: body.into(),
            download: None,
            location: None,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply::new(status, "application/json", value.to_string())
    }

    pub fn redirect(to: &str) -> Reply {
        let mut reply = Reply::new(302, "text/plain", "");
        reply.location = Some(to.to_string());
        reply
    }

    /// A JSON error the page shows as it is: `{"error": "..."}`.
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply::json(status, &serde_json::json!({ "error": message.into() }))
    }
}

/// Binds `addr` and serves until the process ends; `ready` is told the bound address
/// (port 0 picks a free one) before the first request is answered.
pub fn serve(
    wf: Workflow,
    binaries: Binaries,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let server =
        tiny_http::Server::http(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| format!("cannot listen on {addr}: not an IP address"))?;
    let source = source::Source::new(wf, binaries);
    source.report_store_state();
    ready(bound);
    let (server, source) = (Arc::new(server), Arc::new(source));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (server, source) = (Arc::clone(&server), Arc::clone(&source));
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    answer(&source, request);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn answer(source: &source::Source, request: tiny_http::Request) {
    let reply = if *request.method() == tiny_http::Method::Get {
        api::route(source, request.url())
    } else {
        Reply::error(405, "haq ui is read-only: only GET requests")
    };
    let mut headers = vec![header("Content-Type", &reply.content_type)];
    // The page polls: a cached answer would freeze it.
    headers.push(header("Cache-Control", "no-store"));
    if let Some(name) = &reply.download {
        headers.push(header(
            "Content-Disposition",
            &format!("attachment; filename=\"{name}\""),
        ));
    }
    if let Some(to) = &reply.location {
        headers.push(header("Location", to));
    }
    let status = tiny_http::StatusCode(reply.status);
    // A client that went away mid-answer is not an error of the server's.
    let len = reply.body.len();
    let _ = request.respond(tiny_http::Response::new(
        status,
        headers,
        reply.body.as_slice(),
        Some(len),
        None,
    ));
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("header values are made ASCII by Reply")
}
