"""CIP-19 base addresses for tests: bech32 encoding (BIP-173) of header + payment
credential + stake credential. A wallet = one stake credential, many payment keys."""
import hashlib

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (b >> i) & 1 else 0
    return chk


def _hrp_expand(hrp):
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convertbits(data, frombits, tobits):
    acc, bits, ret, maxv = 0, 0, [], (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if bits:
        ret.append((acc << (tobits - bits)) & maxv)
    return ret


def bech32_encode(hrp, data_bytes):
    data = _convertbits(data_bytes, 8, 5)
    values = _hrp_expand(hrp) + data
    polymod = _polymod(values + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + checksum)


def cred(seed):
    return hashlib.blake2b(seed.encode(), digest_size=28).digest()


def base_address(payment_seed, stake_seed, testnet=False, addr_type=0):
    network = 0 if testnet else 1
    header = bytes([(addr_type << 4) | network])
    return bech32_encode("addr_test" if testnet else "addr",
                         header + cred(payment_seed) + cred(stake_seed))


def enterprise_address(payment_seed, testnet=False):
    network = 0 if testnet else 1
    return bech32_encode("addr_test" if testnet else "addr",
                         bytes([(6 << 4) | network]) + cred(payment_seed))
