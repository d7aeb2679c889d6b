//! SIP responses from the network (`probe::sip::message::parse_response`), as a UDP datagram
//! and as the start of a TCP/TLS stream.
#![no_main]

use diemcau::probe::sip::message::{Framing, MAX_MESSAGE, ParseError, parse_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok((response, used)) = parse_response(data, framing) else {
            continue;
        };
        assert!(used <= data.len() && used <= MAX_MESSAGE);
        assert!((100..=699).contains(&response.status));
        assert!(!response.call_id.is_empty());
        assert!(response.cseq < 1 << 31);
        assert!(response.is_provisional() == (response.status < 200));
        match framing {
            Framing::Datagram => assert_eq!(used, data.len(), "a datagram is used whole"),
            Framing::Stream => {
                // The message alone parses to the same response, and one byte less is not yet
                // a message.
                assert_eq!(parse_response(&data[..used], framing), Ok((response.clone(), used)));
                assert_eq!(
                    parse_response(&data[..used - 1], framing).err(),
                    Some(ParseError::Incomplete)
                );
            }
        }
    }
});
