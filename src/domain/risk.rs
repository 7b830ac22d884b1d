//! Risk signals on tickets (DESIGN §3): what makes a ticket suspect, for people to review before
//! the freeze. Nothing here excludes anything: an operator decides, with a reason code
//! ([`super::exclusion::Reason`]).

use super::exclusion::Reason;
use serde::Serialize;
use std::net::IpAddr;

/// Where signals start.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskPolicy {
    /// Number ranges (the first digits) of virtual and IoT numbers.
    pub virtual_prefixes: Vec<String>,
    /// A quiz answered faster than this per question is faster than a person reads.
    pub min_seconds_per_question: f64,
    /// This many tickets of a round or more from one network (/24, /64).
    pub tickets_per_network: u64,
    /// This many tickets of a round or more from one browser (its device cookie).
    pub tickets_per_device: u64,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        Self {
            virtual_prefixes: ["162", "165", "167", "170", "171"]
                .map(String::from)
                .to_vec(),
            min_seconds_per_question: 3.0,
            tickets_per_network: 5,
            tickets_per_device: 3,
        }
    }
}

/// One reason to look at a ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Signal {
    VirtualNumber { prefix: String },
    SharedAddress { network: String, tickets: u64 },
    SharedDevice { tickets: u64 },
    TooFast { seconds_per_question: f64 },
}

impl Signal {
    /// The exclusion reason that fits it.
    pub fn reason(&self) -> Reason {
        match self {
            Signal::VirtualNumber { .. } => Reason::VirtualNumber,
            Signal::SharedAddress { .. } => Reason::SharedAddress,
            Signal::SharedDevice { .. } => Reason::SharedDevice,
            Signal::TooFast { .. } => Reason::TooFast,
        }
    }

    /// For the operator, in Chinese.
    pub fn describe(&self) -> String {
        match self {
            Signal::VirtualNumber { prefix } => format!("{prefix} 号段（虚拟或物联网号码）"),
            Signal::SharedAddress { network, tickets } => {
                format!("同一网络 {network} 本期 {tickets} 张券")
            }
            Signal::SharedDevice { tickets } => format!("同一设备本期 {tickets} 张券"),
            Signal::TooFast {
                seconds_per_question,
            } => format!("每题 {seconds_per_question:.1} 秒"),
        }
    }
}

/// What is known of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSigns<'a> {
    pub phone: &'a str,
    /// Seconds from the start of the attempt to its submission, and its questions.
    pub seconds: f64,
    pub questions: u32,
    pub network: Option<&'a str>,
    /// Tickets of the round from the same network and from the same device, itself included.
    pub same_network: u64,
    pub same_device: u64,
    pub device_known: bool,
}

/// The signals on a ticket, strongest kind first.
pub fn signals(t: &TicketSigns<'_>, p: &RiskPolicy) -> Vec<Signal> {
    let mut out = Vec::new();
    if let Some(prefix) = p
        .virtual_prefixes
        .iter()
        .find(|prefix| !prefix.is_empty() && t.phone.starts_with(prefix.as_str()))
    {
        out.push(Signal::VirtualNumber {
            prefix: prefix.clone(),
        });
    }
    if t.device_known && t.same_device >= p.tickets_per_device.max(2) {
        out.push(Signal::SharedDevice {
            tickets: t.same_device,
        });
    }
    if let Some(network) = t.network {
        if t.same_network >= p.tickets_per_network.max(2) {
            out.push(Signal::SharedAddress {
                network: network.to_owned(),
                tickets: t.same_network,
            });
        }
    }
    if t.questions > 0 {
        let per = t.seconds / f64::from(t.questions);
        if per < p.min_seconds_per_question {
            out.push(Signal::TooFast {
                seconds_per_question: (per * 10.0).round() / 10.0,
            });
        }
    }
    out
}

/// The network of a client address, which the review groups by: its /24 for IPv4, its /64 for
/// IPv6 (one household or office), so that the address itself is not kept.
pub fn network_of(address: &str) -> Option<String> {
    match address.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(&v4.to_string()),
            None => {
                let s = v6.segments();
                Some(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signs(phone: &str) -> TicketSigns<'_> {
        TicketSigns {
            phone,
            seconds: 120.0,
            questions: 10,
            network: Some("203.0.113.0/24"),
            same_network: 1,
            same_device: 1,
            device_known: true,
        }
    }

    #[test]
    fn an_ordinary_ticket_has_no_signal() {
        assert!(signals(&signs("13800138000"), &RiskPolicy::default()).is_empty());
    }

    #[test]
    fn each_signal_starts_at_its_threshold() {
        let p = RiskPolicy::default();
        assert_eq!(
            signals(&signs("17012345678"), &p),
            vec![Signal::VirtualNumber {
                prefix: "170".into()
            }]
        );
        let fast = TicketSigns {
            seconds: 29.0,
            ..signs("13800138000")
        };
        assert_eq!(
            signals(&fast, &p),
            vec![Signal::TooFast {
                seconds_per_question: 2.9
            }]
        );
        let just = TicketSigns {
            seconds: 30.0,
            ..signs("13800138000")
        };
        assert!(signals(&just, &p).is_empty());
        let crowd = TicketSigns {
            same_network: 5,
            same_device: 3,
            ..signs("13800138000")
        };
        let got = signals(&crowd, &p);
        assert_eq!(
            got,
            vec![
                Signal::SharedDevice { tickets: 3 },
                Signal::SharedAddress {
                    network: "203.0.113.0/24".into(),
                    tickets: 5
                }
            ]
        );
        assert_eq!(got[0].reason(), Reason::SharedDevice);
        assert!(got[1].describe().contains("203.0.113.0/24"));
        let few = TicketSigns {
            same_network: 4,
            same_device: 2,
            ..signs("13800138000")
        };
        assert!(signals(&few, &p).is_empty());
        let unknown_device = TicketSigns {
            device_known: false,
            same_device: 9,
            ..signs("13800138000")
        };
        assert!(signals(&unknown_device, &p).is_empty());
    }

    #[test]
    fn networks_are_the_24_or_the_64_never_the_address() {
        assert_eq!(
            network_of("203.0.113.77").as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network_of("2001:db8:1:2:3:4:5:6").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(
            network_of("::ffff:10.1.2.3").as_deref(),
            Some("10.1.2.0/24")
        );
        assert_eq!(network_of("unknown"), None);
    }
}
