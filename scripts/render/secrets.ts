/** How secrets look offline: the placeholder written instead of a value, and Pulumi's wire marker. */

/** Written wherever a secret's value would be: encrypted config, secret inputs of an object. */
export const SECRET_PLACEHOLDER = "[secret]";
/** Pulumi's wire marker of a secret value, as mock inputs carry it. */
export const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
