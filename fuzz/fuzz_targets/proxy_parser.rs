//! Arbitrary bytes into the interleaving proxy's HTTP/1.1 reader, as requests (several on one
//! connection) and as a response. Whatever it reads must read back the same once forwarded:
//! the proxy's normalised framing leaves an upstream nothing to read differently.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racecheck::probe::interleave::wire;
use tokio::io::BufReader;

/// Forwarded heads past the bound would be refused by a proxy in front of this one; the
/// rewriting (`Name: value`) may lengthen a head by a few bytes a field.
fn fits(bytes: &[u8], body: &[u8]) -> bool {
    bytes.len() - body.len() <= wire::MAX_HEAD
}

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut r = BufReader::new(data);
        for _ in 0..16 {
            let Ok(Some(req)) = wire::read_request(&mut r).await else {
                break;
            };
            let bytes = req.to_bytes();
            if !fits(&bytes, &req.body) {
                continue;
            }
            let mut again = BufReader::new(&bytes[..]);
            let back = wire::read_request(&mut again)
                .await
                .expect("a forwarded request reads back")
                .expect("a forwarded request is not empty");
            assert_eq!(back.body, req.body);
            assert_eq!(back.head.method, req.head.method);
            assert_eq!(back.head.target, req.head.target);
            assert_eq!(back.head.fields.0.len(), {
                let framing = usize::from(req.head.framing != wire::Framing::None);
                req.head
                    .fields
                    .0
                    .iter()
                    .filter(|(k, _)| {
                        !k.eq_ignore_ascii_case("content-length")
                            && !k.eq_ignore_ascii_case("transfer-encoding")
                    })
                    .count()
                    + framing
            });
            assert!(
                matches!(wire::read_request(&mut again).await, Ok(None)),
                "nothing follows a forwarded request"
            );
        }
        let to_head = data.first().is_some_and(|b| b & 1 == 1);
        let mut r = BufReader::new(data);
        if let Ok(Some(resp)) = wire::read_response(&mut r, to_head).await {
            let bytes = resp.to_bytes();
            if fits(&bytes, &resp.body) {
                let mut again = BufReader::new(&bytes[..]);
                let back = wire::read_response(&mut again, to_head)
                    .await
                    .expect("a forwarded answer reads back")
                    .expect("a forwarded answer is not empty");
                assert_eq!((back.status, &back.body), (resp.status, &resp.body));
            }
        }
    });
});
