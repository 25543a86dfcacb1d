# Sourced by the scripts in scripts/: finds a JDK 21+ and the repository root.
# The default `java` on our machines is 17; pgdispatch needs 21 or newer at build and run time.

PGD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

pgd_java_major() { # $1 = path to a java binary; prints its major version or nothing
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}

# Maven 3.8's bundled Guava calls sun.misc.Unsafe, which JDK 24+ warns about on every run: allow it quietly.
pgd_quiet_maven() {
  if [ "$1" -ge 24 ] && [[ "${MAVEN_OPTS:-}" != *sun-misc-unsafe* ]]; then
    export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
  fi
}

# Sets JAVA_HOME to a JDK 21+ (JAVA_HOME when suitable, else the newest JDK in /usr/lib/jvm), or fails
# naming what it found.
pgd_find_jdk() {
  local seen="" cand major
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && [ -x "$JAVA_HOME/bin/javac" ]; then
    major=$(pgd_java_major "$JAVA_HOME/bin/java")
    if [ -n "$major" ] && [ "$major" -ge 21 ]; then export JAVA_HOME; pgd_quiet_maven "$major"; return 0; fi
    seen="$seen JAVA_HOME=$JAVA_HOME (java $major);"
  fi
  for cand in $(ls -d /usr/lib/jvm/*/ /opt/java/openjdk/ 2>/dev/null | sort -rV); do
    cand=${cand%/}
    [ -x "$cand/bin/java" ] && [ -x "$cand/bin/javac" ] || continue
    major=$(pgd_java_major "$cand/bin/java")
    if [ -n "$major" ] && [ "$major" -ge 21 ]; then export JAVA_HOME="$cand"; export PATH="$JAVA_HOME/bin:$PATH"; pgd_quiet_maven "$major"; return 0; fi
    seen="$seen $cand (java $major);"
  done
  echo "pgdispatch: needs a JDK 21 or newer; found:${seen:- none}. Install one (e.g. apt-get install openjdk-21-jdk-headless) or set JAVA_HOME." >&2
  return 1
}

pgd_jar="$PGD_ROOT/pgdispatch-cli/target/pgdispatch.jar"
pgd_chaos_jar="$PGD_ROOT/pgdispatch-chaos/target/pgdispatch-chaos.jar"

# Builds the runnable jars (pgdispatch-cli/target/pgdispatch.jar, and the chaos jar beside it) when one is
# missing or older than the sources of any module.
pgd_ensure_jar() {
  local jar
  for jar in "$pgd_jar" "$pgd_chaos_jar"; do
    if [ ! -f "$jar" ] || [ -n "$(find "$PGD_ROOT"/pgdispatch-*/src/main "$PGD_ROOT"/pgdispatch-*/pom.xml "$PGD_ROOT/db/migrations" "$PGD_ROOT/pom.xml" -newer "$jar" -type f 2>/dev/null | head -n1)" ]; then
      echo "pgdispatch: building $pgd_jar ..." >&2
      (cd "$PGD_ROOT" && mvn -B -q -DskipTests package) >&2 || { echo "pgdispatch: build failed" >&2; return 1; }
      return 0
    fi
  done
}
