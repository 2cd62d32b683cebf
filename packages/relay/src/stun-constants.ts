/**
 * STUN protocol constants, named as RFC 8489 (and the RFCs it cites) name them. Spec values only:
 * the knobs of our own server are in tunables.ts.
 */

/** RFC 8489 §5: the fixed value in bytes 4..7 of every message since RFC 5389. */
export const MAGIC_COOKIE = 0x2112a442;
/** RFC 8489 §5: type (2) + length (2) + magic cookie (4) + transaction ID (12). */
export const HEADER_LENGTH = 20;
/** RFC 8489 §5: 96-bit transaction ID. RFC 3489 used 128 bits (the cookie's place included). */
export const TRANSACTION_ID_LENGTH = 12;
/** RFC 8489 §14: type (2) + length (2) before each attribute value. */
export const ATTRIBUTE_HEADER_LENGTH = 4;

/** RFC 8489 §5 / §18.2: methods. Only Binding is STUN proper; TURN adds the rest. */
export const METHOD_BINDING = 0x001;

/** RFC 8489 §5: the two class bits, C1 (bit 8 of the type) and C0 (bit 4). */
export const CLASS_REQUEST = 0b00;
export const CLASS_INDICATION = 0b01;
export const CLASS_SUCCESS_RESPONSE = 0b10;
export const CLASS_ERROR_RESPONSE = 0b11;

/** RFC 8489 §18.3 (comprehension-required range 0x0000-0x7FFF). */
export const ATTR_MAPPED_ADDRESS = 0x0001;
/** RFC 3489 §11.2.2, removed by RFC 5389; RFC 5780 reuses it. Not implemented here. */
export const ATTR_RESPONSE_ADDRESS = 0x0002;
/** RFC 5780 §7.2 (and RFC 3489). Not implemented here: a server with one address cannot honour it. */
export const ATTR_CHANGE_REQUEST = 0x0003;
export const ATTR_USERNAME = 0x0006;
export const ATTR_MESSAGE_INTEGRITY = 0x0008;
export const ATTR_ERROR_CODE = 0x0009;
export const ATTR_UNKNOWN_ATTRIBUTES = 0x000a;
export const ATTR_REALM = 0x0014;
export const ATTR_NONCE = 0x0015;
export const ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001c;
export const ATTR_PASSWORD_ALGORITHM = 0x001d;
export const ATTR_USERHASH = 0x001e;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
/** RFC 8445 §16.1 (ICE), comprehension-required. Not implemented here. */
export const ATTR_PRIORITY = 0x0024;
/** RFC 8489 §18.3 (comprehension-optional range 0x8000-0xFFFF). */
export const ATTR_PASSWORD_ALGORITHMS = 0x8002;
export const ATTR_ALTERNATE_DOMAIN = 0x8003;
export const ATTR_SOFTWARE = 0x8022;
export const ATTR_ALTERNATE_SERVER = 0x8023;
export const ATTR_FINGERPRINT = 0x8028;
/** RFC 8445 §16.1 (ICE), comprehension-optional. */
export const ATTR_ICE_CONTROLLED = 0x8029;

/** RFC 8489 §14: attribute types below this must be understood or the request is refused (420). */
export const COMPREHENSION_OPTIONAL_MIN = 0x8000;

/** RFC 8489 §14.7: CRC-32 of the message up to FINGERPRINT, XORed with this ("STUN"). */
export const FINGERPRINT_XOR = 0x5354554e;
/** RFC 8489 §14.5: HMAC-SHA1, 20 bytes. */
export const MESSAGE_INTEGRITY_LENGTH = 20;
/** RFC 8489 §14.7: a 32-bit CRC. */
export const FINGERPRINT_LENGTH = 4;

/** RFC 8489 §14.1: address family in (XOR-)MAPPED-ADDRESS. */
export const ADDRESS_FAMILY_IPV4 = 0x01;
export const ADDRESS_FAMILY_IPV6 = 0x02;

/** RFC 8489 §14.8: ERROR-CODE values a Binding server sends. */
export const ERROR_BAD_REQUEST = 400;
export const ERROR_UNKNOWN_ATTRIBUTE = 420;
/** RFC 8489 §14.8: a reason phrase is at most 127 characters (763 bytes). */
export const ERROR_REASON_MAX_BYTES = 763;
/** RFC 8489 §14.9: SOFTWARE is at most 128 characters (763 bytes). */
export const SOFTWARE_MAX_BYTES = 763;

/** RFC 8489 §6.2.1 / §6.2.2: retransmission (UDP): initial RTO 500 ms, Rc = 7 sends, Rm = 16. */
export const RTO_INITIAL_MS = 500;
export const RC_SENDS = 7;
export const RM_FINAL_WAIT = 16;

/** RFC 8489 §18.6 (IANA): the default port for STUN over UDP and TCP. */
export const DEFAULT_PORT = 3478;
