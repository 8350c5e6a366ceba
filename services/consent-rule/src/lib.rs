//! The consent decision rule: whether information may cross from one organisation to another
//! for a participant, given their consents and restrictions. Pure, with no I/O, so that the
//! consent service and the gateway decide identically.
