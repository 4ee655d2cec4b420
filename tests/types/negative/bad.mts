// Must FAIL to compile (scripts/test-types.sh expects tsc to exit non-zero):
// a function is not a Json value.
import { open } from "waymark";

const scope = await (await open()).scope({});
await scope.set("e", { callback: () => "not json" }, { cause: "c" });
