//! The scenario fake over real HTTP on 127.0.0.1, for tests that run the
//! `harness` binary: a separate process cannot share a tower-test pair, so
//! the same [`Req`]/[`Reply`] scenario answers on a socket instead, served
//! by hyper on a thread of its own. Plain HTTP: kube accepts an `http://`
//! server in a kubeconfig, which keeps TLS out of a test about lifecycles.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::{Log, Reply, Req};

/// A running server: its URL and the requests it has seen.
pub struct Server {
    pub url: String,
    pub log: Log,
}

type Scenario = Arc<Mutex<dyn FnMut(&Req) -> Reply + Send>>;

/// Serves `scenario` until the test process exits.
pub fn serve(scenario: impl FnMut(&Req) -> Reply + Send + 'static) -> Server {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr: SocketAddr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let log: Log = Arc::default();
    let scenario: Scenario = Arc::new(Mutex::new(scenario));
    let recorded = log.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let scenario = scenario.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        answer(request, scenario.clone(), recorded.clone())
                    });
                    // A client that goes away mid-request is no error here.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Server {
        url: format!("http://{addr}"),
        log,
    }
}

async fn answer(
    request: Request<Incoming>,
    scenario: Scenario,
    log: Log,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let req = Req {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        content_type: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(req.clone());
    let reply = (scenario.lock().unwrap())(&req);
    let (status, text, json) = match reply {
        Reply::Json(status, text) => (status, text, true),
        Reply::Text(status, text) => (status, text, false),
        Reply::Hold => std::future::pending().await,
        Reply::Later(rx) => match rx.await {
            Ok((status, text)) => (status, text, true),
            Err(_) => std::future::pending().await,
        },
    };
    let content_type = if json {
        "application/json"
    } else {
        "text/plain"
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(text)))
        .unwrap())
}
