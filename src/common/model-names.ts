/**
 * How models and versions are named, on disk and in paths alike: a model is a folder of the
 * repository, a version a folder inside it.
 */

/** A model folder's name, and what a route or DEFAULT_MODEL may name. */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A version folder's name, and a version in a path: a positive integer (at most nine digits, so it stays exact). */
export const VERSION = /^[1-9]\d{0,8}$/;

/**
 * A version label (config.json version_labels, a path's `labels/{label}`): a name no version number
 * can be, so that V2's version field may hold either.
 */
export const VERSION_LABEL = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
