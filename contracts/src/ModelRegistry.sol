// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles} from "./Roles.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";

/// @title ModelRegistry
/// @notice Model versions and their lineage: parent model, training
/// dataset, producing job.
contract ModelRegistry is Roles {
    /// @notice May register models produced by jobs (the engine).
    bytes32 public constant REGISTRAR = keccak256("REGISTRAR");
    /// @notice Longest lineage walked by `lineage`.
    uint256 public constant MAX_LINEAGE = 64;

    /// @notice A registered model version.
    struct Model {
        address owner;
        bytes32 contentId;
        bytes32 datasetId;
        bytes32 codeHash;
        bytes32 parent;
        bytes32 jobId;
        string architecture;
        string version;
    }

    DatasetRegistry public immutable datasets;
    mapping(bytes32 modelId => Model) private _models;
    bytes32[] private _ids;

    /// @notice Longest architecture or version string.
    uint256 public constant MAX_LABEL = 64;

    /// @notice `modelId` is already registered.
    error ModelExists(bytes32 modelId);
    /// @notice No model `modelId`.
    error UnknownModel(bytes32 modelId);
    /// @notice The parent model is not registered.
    error UnknownParent(bytes32 parent);
    /// @notice The training dataset is not registered.
    error UnknownDataset(bytes32 datasetId);
    /// @notice Zero id, zero content id, or architecture/version longer than MAX_LABEL.
    error InvalidModel();

    /// @notice A model version was registered.
    event ModelRegistered(
        bytes32 indexed modelId,
        address indexed owner,
        bytes32 indexed parent,
        bytes32 contentId,
        bytes32 datasetId,
        bytes32 codeHash,
        bytes32 jobId,
        string architecture,
        string version
    );

    constructor(address admin, DatasetRegistry datasets_) Roles(admin) {
        datasets = datasets_;
    }

    /// @notice Registers a model version owned by the caller. A non-zero
    /// `jobId` (a model trained by a job) needs the REGISTRAR role: the engine
    /// registers what its jobs produce.
    /// @param modelId the model version's id (the engine's 16-byte id, left-aligned).
    /// @param contentId BLAKE3 digest of the weights (`artha://<cid>`).
    /// @param architecture e.g. "mlp", "llama" (at most MAX_LABEL bytes).
    /// @param datasetId training dataset (zero if none); must be registered.
    /// @param codeHash digest of the training code or image.
    /// @param version free-form version label (at most MAX_LABEL bytes).
    /// @param parent the model this one was derived from (zero if none); must be registered.
    /// @param jobId the job that produced it (zero if none).
    function register(
        bytes32 modelId,
        bytes32 contentId,
        string calldata architecture,
        bytes32 datasetId,
        bytes32 codeHash,
        string calldata version,
        bytes32 parent,
        bytes32 jobId
    ) external {
        if (modelId == bytes32(0) || contentId == bytes32(0)) revert InvalidModel();
        if (bytes(architecture).length > MAX_LABEL || bytes(version).length > MAX_LABEL) revert InvalidModel();
        if (_models[modelId].owner != address(0)) revert ModelExists(modelId);
        if (parent != bytes32(0) && _models[parent].owner == address(0)) revert UnknownParent(parent);
        if (datasetId != bytes32(0) && !datasets.exists(datasetId)) revert UnknownDataset(datasetId);
        if (jobId != bytes32(0) && !hasRole(REGISTRAR, msg.sender)) revert Unauthorized(REGISTRAR, msg.sender);
        _models[modelId] = Model(msg.sender, contentId, datasetId, codeHash, parent, jobId, architecture, version);
        _ids.push(modelId);
        emit ModelRegistered(modelId, msg.sender, parent, contentId, datasetId, codeHash, jobId, architecture, version);
    }

    /// @notice A model's record.
    function get(bytes32 modelId) external view returns (Model memory m) {
        m = _models[modelId];
        if (m.owner == address(0)) revert UnknownModel(modelId);
    }

    /// @notice Whether `modelId` is registered.
    function exists(bytes32 modelId) external view returns (bool) {
        return _models[modelId].owner != address(0);
    }

    /// @notice `modelId` followed by its ancestors, nearest first (at most
    /// MAX_LINEAGE entries).
    function lineage(bytes32 modelId) external view returns (bytes32[] memory chain) {
        if (_models[modelId].owner == address(0)) revert UnknownModel(modelId);
        bytes32[] memory buf = new bytes32[](MAX_LINEAGE);
        uint256 n = 0;
        bytes32 cur = modelId;
        while (cur != bytes32(0) && n < MAX_LINEAGE) {
            buf[n++] = cur;
            cur = _models[cur].parent;
        }
        chain = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            chain[i] = buf[i];
        }
    }

    /// @notice Number of models.
    function count() external view returns (uint256) {
        return _ids.length;
    }

    /// @notice The `i`th model id (registration order).
    function idAt(uint256 i) external view returns (bytes32) {
        return _ids[i];
    }

    /// @notice Up to `limit` model ids from position `offset`.
    function ids(uint256 offset, uint256 limit) external view returns (bytes32[] memory page) {
        uint256 total = _ids.length;
        uint256 end = offset >= total ? offset : (total - offset > limit ? offset + limit : total);
        page = new bytes32[](end - offset);
        for (uint256 i = offset; i < end; i++) {
            page[i - offset] = _ids[i];
        }
    }
}
