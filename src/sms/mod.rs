//! Text-message gateways. The outbox (`sms_outbox`) is where every message waits; a gateway
//! adapter sends it. This module holds the providers' request signing, pure and tested against
//! the providers' documented known-answer vectors: Aliyun SMS (RPC signature v1, HMAC-SHA1) and
//! Tencent Cloud SMS (TC3-HMAC-SHA256).

pub mod aliyun;
pub mod tencent;
