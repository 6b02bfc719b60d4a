//! A trivial HTTP/1.1 server (hyper) answering `hello world` to every
//! request, for bench/load: the Rust counterpart of the trivial Node server.
//!
//! `hello_server [PORT] [THREADS]`: PORT 0 (default) picks a free one;
//! THREADS 0 (default) means one per core. Prints `listening on PORT`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let threads: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    let rt = builder.enable_all().build().expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("listening on {}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().ok();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"hello world")));
                    resp.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/plain"));
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}
