package pgdispatch.ui;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * Headless Debian Chromium driven through Debian's chromedriver. Both paths are given explicitly, so
 * Selenium Manager never runs and nothing is downloaded; when the browser cannot start the test fails
 * (the constructor throws), it is never skipped. {@code .ci/run} installs the two packages.
 */
final class Browser {
    static final String CHROMIUM = System.getProperty("pgdispatch.chromium", "/usr/bin/chromium");
    static final String CHROMEDRIVER = System.getProperty("pgdispatch.chromedriver", "/usr/bin/chromedriver");
    static final int WIDTH = 1366;

    private Browser() {}

    static WebDriver start() {
        for (String path : new String[] {CHROMIUM, CHROMEDRIVER}) {
            if (!Files.isExecutable(Path.of(path))) {
                throw new IllegalStateException(path + " is missing: apt-get install -y chromium chromium-driver (.ci/run does)");
            }
        }
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM);
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=" + WIDTH + ",900", "--hide-scrollbars", "--no-first-run", "--disable-extensions");
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(new File(CHROMEDRIVER)).usingAnyFreePort().build();
        return new ChromeDriver(service, options);
    }

    /** The whole page as a PNG at {@code file} (Chromium's DevTools capture beyond the viewport). */
    static void screenshot(WebDriver browser, Path file) throws Exception {
        long height = (Long) ((JavascriptExecutor) browser).executeScript(
                "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)");
        Map<String, Object> shot = ((ChromeDriver) browser).executeCdpCommand("Page.captureScreenshot", Map.of(
                "format", "png", "captureBeyondViewport", true,
                "clip", Map.of("x", 0, "y", 0, "width", WIDTH, "height", Math.min(height, 6000), "scale", 1)));
        Files.createDirectories(file.getParent());
        Files.write(file, Base64.getDecoder().decode((String) shot.get("data")));
    }

    /** Clicks what leads to another page and returns once that page has replaced this one. */
    static void open(WebDriver browser, By target) {
        WebElement page = browser.findElement(By.tagName("html"));
        browser.findElement(target).click();
        new WebDriverWait(browser, Duration.ofSeconds(10)).until(ExpectedConditions.stalenessOf(page));
    }

    static String text(WebDriver browser, String css) {
        return browser.findElement(By.cssSelector(css)).getText();
    }
}
