// TraylertEAX decrypts and verifies one AES-EAX message, as pycryptodome's
// AES.new(key, AES.MODE_EAX, nonce).decrypt_and_verify(ciphertext, tag)
// does in the Traylert client (IngoKl/Traylert traylert/traylert_crypto.py).
// It is written from the EAX paper (Bellare, Rogaway, Wagner, "The EAX Mode
// of Operation", FSE 2004) on the JDK's AES/ECB block cipher only, so it
// shares no code with vigil's Go implementation (ProtonMail/go-crypto):
//
//   N = OMAC_K^0(nonce), H = OMAC_K^1(header), C = OMAC_K^2(ciphertext)
//   tag = N xor C xor H,  plaintext = CTR_K(N, ciphertext)
//
// where OMAC_K^t(M) = CMAC_K([t]_16 || M) (NIST SP 800-38B).
//
// Usage (Java 11+ runs a single source file):
//
//   java TraylertEAX.java KEY NONCE_HEX TAG_HEX CIPHERTEXT_HEX
//     KEY is the Traylert key; the AES key is its UTF-8 bytes.
//     Prints the plaintext bytes; exits 2 with "MAC check failed" when the
//     tag does not verify (pycryptodome raises ValueError).
//   java TraylertEAX.java --selftest
//     Checks the paper's test vectors (every decryption checks them first).
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import javax.crypto.Cipher;
import javax.crypto.spec.SecretKeySpec;

public class TraylertEAX {
    private final Cipher aes;
    private final byte[] k1, k2;

    TraylertEAX(byte[] key) throws Exception {
        aes = Cipher.getInstance("AES/ECB/NoPadding");
        aes.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"));
        byte[] l = block(new byte[16]);
        k1 = dbl(l);
        k2 = dbl(k1);
    }

    private byte[] block(byte[] in) throws Exception {
        return aes.doFinal(in);
    }

    // dbl multiplies by x in GF(2^128) (polynomial x^128 + x^7 + x^2 + x + 1).
    private static byte[] dbl(byte[] b) {
        byte[] out = new byte[16];
        for (int i = 0; i < 15; i++) {
            out[i] = (byte) ((b[i] << 1) | ((b[i + 1] & 0xff) >>> 7));
        }
        out[15] = (byte) (b[15] << 1);
        if ((b[0] & 0x80) != 0) {
            out[15] ^= (byte) 0x87;
        }
        return out;
    }

    private byte[] cmac(byte[] m) throws Exception {
        int n = Math.max(1, (m.length + 15) / 16);
        byte[] last = new byte[16];
        if (m.length > 0 && m.length % 16 == 0) {
            for (int i = 0; i < 16; i++) {
                last[i] = (byte) (m[(n - 1) * 16 + i] ^ k1[i]);
            }
        } else {
            int r = m.length - (n - 1) * 16;
            System.arraycopy(m, (n - 1) * 16, last, 0, r);
            last[r] = (byte) 0x80;
            for (int i = 0; i < 16; i++) {
                last[i] ^= k2[i];
            }
        }
        byte[] x = new byte[16];
        for (int j = 0; j < n - 1; j++) {
            for (int i = 0; i < 16; i++) {
                x[i] ^= m[j * 16 + i];
            }
            x = block(x);
        }
        for (int i = 0; i < 16; i++) {
            x[i] ^= last[i];
        }
        return block(x);
    }

    private byte[] omac(int t, byte[] m) throws Exception {
        byte[] in = new byte[16 + m.length];
        in[15] = (byte) t;
        System.arraycopy(m, 0, in, 16, m.length);
        return cmac(in);
    }

    // ctr is CTR mode with a 128-bit big-endian counter starting at iv.
    private byte[] ctr(byte[] iv, byte[] in) throws Exception {
        byte[] counter = iv.clone();
        byte[] out = new byte[in.length];
        for (int off = 0; off < in.length; off += 16) {
            byte[] ks = block(counter);
            for (int i = 0; i < 16 && off + i < in.length; i++) {
                out[off + i] = (byte) (in[off + i] ^ ks[i]);
            }
            for (int i = 15; i >= 0; i--) {
                if (++counter[i] != 0) {
                    break;
                }
            }
        }
        return out;
    }

    byte[] decryptAndVerify(byte[] nonce, byte[] header, byte[] ct, byte[] tag) throws Exception {
        byte[] n = omac(0, nonce), h = omac(1, header), c = omac(2, ct);
        byte[] want = new byte[16];
        for (int i = 0; i < 16; i++) {
            want[i] = (byte) (n[i] ^ h[i] ^ c[i]);
        }
        if (tag.length != 16 || !MessageDigest.isEqual(want, tag)) {
            throw new IllegalArgumentException("MAC check failed");
        }
        return ctr(n, ct);
    }

    static byte[] unhex(String s) {
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    static void selftest() throws Exception {
        String[][] vectors = { // MSG, KEY, NONCE, HEADER, CIPHER (ciphertext || tag), from the EAX paper
            {"", "233952DEE4D5ED5F9B9C6D6FF80FF478", "62EC67F9C3A4A407FCB2A8C49031A8B3", "6BFB914FD07EAE6B", "E037830E8389F27B025A2D6527E79D01"},
            {"F7FB", "91945D3F4DCBEE0BF45EF52255F095A4", "BECAF043B0A23D843194BA972C66DEBD", "FA3BFD4806EB53FA", "19DD5C4C9331049D0BDAB0277408F67967E5"},
            {"1A47CB4933", "01F74AD64077F2E704C0F60ADA3DD523", "70C3DB4F0D26368400A10ED05D2BFF5E", "234A3463C1264AC6", "D851D5BAE03A59F238A23E39199DC9266626C40F80"},
        };
        for (String[] v : vectors) {
            byte[] all = unhex(v[4]);
            byte[] ct = java.util.Arrays.copyOfRange(all, 0, all.length - 16);
            byte[] tag = java.util.Arrays.copyOfRange(all, all.length - 16, all.length);
            byte[] got = new TraylertEAX(unhex(v[1])).decryptAndVerify(unhex(v[2]), unhex(v[3]), ct, tag);
            if (!MessageDigest.isEqual(got, unhex(v[0]))) {
                throw new AssertionError("vector " + v[1] + " decrypts wrong");
            }
        }
    }

    public static void main(String[] args) throws Exception {
        selftest();
        if (args.length == 1 && args[0].equals("--selftest")) {
            System.out.println("ok");
            return;
        }
        if (args.length != 4) {
            System.err.println("usage: java TraylertEAX.java KEY NONCE_HEX TAG_HEX CIPHERTEXT_HEX | --selftest");
            System.exit(1);
        }
        byte[] plain;
        try {
            plain = new TraylertEAX(args[0].getBytes(StandardCharsets.UTF_8))
                .decryptAndVerify(unhex(args[1]), new byte[0], unhex(args[3]), unhex(args[2]));
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage());
            System.exit(2);
            return;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(plain);
        out.writeTo(System.out);
        System.out.flush();
    }
}
