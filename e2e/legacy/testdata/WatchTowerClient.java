// WatchTowerClient reproduces watchTower's Java client and its test program
// (lucasmouilleron/watchTower clientJava/client.java and clientJava/test.java)
// for compat case 27: HttpURLConnection with headers "password",
// "content-type: application/json" and an explicit Content-Length, 10 s
// connect and read timeouts, an optional trust-all TLS mode, JSON bodies
// built with String.format and no escaping, "level" sent as a string, and
// only the last line of each answer kept.
//
// Usage: java WatchTowerClient.java BASE_URL PASSWORD
//   e.g. java WatchTowerClient.java https://localhost:4443 "change me"
// test.java: pulse("testJava", …, 60) and print the answer, cancel, then
// add("testJava", "ok message", 3, false).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

public class WatchTowerClient {
    private final String base;
    private final String password;

    WatchTowerClient(String base, String password, boolean trustAll) throws Exception {
        this.base = base;
        this.password = password;
        if (trustAll) {
            TrustManager[] all = {new X509TrustManager() {
                public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
                public void checkClientTrusted(X509Certificate[] c, String a) {}
                public void checkServerTrusted(X509Certificate[] c, String a) {}
            }};
            SSLContext sc = SSLContext.getInstance("TLS");
            sc.init(null, all, new java.security.SecureRandom());
            HttpsURLConnection.setDefaultSSLSocketFactory(sc.getSocketFactory());
            HttpsURLConnection.setDefaultHostnameVerifier((h, s) -> true);
        }
    }

    private String request(String method, String path, String body) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(base + path).openConnection();
        c.setRequestMethod(method);
        c.setConnectTimeout(10000);
        c.setReadTimeout(10000);
        c.setRequestProperty("password", password);
        c.setRequestProperty("content-type", "application/json");
        byte[] data = body.getBytes(StandardCharsets.UTF_8);
        c.setRequestProperty("Content-Length", Integer.toString(data.length));
        c.setDoOutput(true);
        try (OutputStream os = c.getOutputStream()) {
            os.write(data);
        }
        String last = "";
        try (BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                last = line;
            }
        }
        return last;
    }

    String pulse(String service, String alertType, String alertTarget, int nextIn) throws Exception {
        return request("POST", "/heartbeat", String.format(
            "{\"service\":\"%s\",\"alertType\":\"%s\",\"alertTarget\":\"%s\",\"nextIn\":%d}", service, alertType, alertTarget, nextIn));
    }

    String cancel(String service) throws Exception {
        return request("DELETE", "/heartbeat", String.format("{\"service\":\"%s\"}", service));
    }

    // add cleans the message as the original: " → \", control characters
    // → spaces, runs of whitespace collapsed, trimmed; backslashes as they are.
    String add(String service, String message, int level, boolean throwsException) throws Exception {
        String m = message.replace("\"", "\\\"").replaceAll("\\p{Cntrl}", " ").replaceAll("\\s+", " ").trim();
        try {
            return request("POST", "/event", String.format("{\"service\":\"%s\",\"message\":\"%s\",\"level\":\"%s\"}", service, m, level));
        } catch (Exception e) {
            if (throwsException) {
                throw e;
            }
            return null;
        }
    }

    public static void main(String[] args) throws Exception {
        WatchTowerClient c = new WatchTowerClient(args[0], args[1], true);
        System.out.println(c.pulse("testJava", "pushover", "pushoverTargetID", 60));
        System.out.println(c.cancel("testJava"));
        System.out.println(c.add("testJava", "ok message", 3, false));
    }
}
