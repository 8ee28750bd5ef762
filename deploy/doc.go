// Package deploy holds the container build and the production-like compose stack; its tests check them without a container engine.
package deploy
